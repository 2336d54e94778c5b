export { default } from '../../../workflows/noop.ts';
