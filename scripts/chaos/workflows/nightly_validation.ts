export { default } from '../../../workflows/nightly_validation.ts';
