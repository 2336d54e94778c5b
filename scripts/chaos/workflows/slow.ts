export { default } from '../../../workflows/slow.ts';
