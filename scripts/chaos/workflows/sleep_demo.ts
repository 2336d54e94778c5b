export { default } from '../../../workflows/sleep_demo.ts';
