export { default } from '../../../workflows/validate_device.ts';
