export { default } from '../../../workflows/hello.ts';
