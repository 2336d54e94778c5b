export { default } from '../../../workflows/flaky.ts';
