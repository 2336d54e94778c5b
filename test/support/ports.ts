export { freePort } from '../../scripts/support/ports.ts';
