export { default } from '../../../workflows/retry_demo.ts';
