export { default } from '../../../workflows/provision_port.ts';
