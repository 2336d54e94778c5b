export { default } from '../../../workflows/callback_demo.ts';
