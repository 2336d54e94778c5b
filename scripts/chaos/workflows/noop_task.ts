export { default } from '../../../workflows/noop_task.ts';
