import { workflow, z } from '../src/index.ts';
import { devices, portsOf } from './_inventory.ts';

/** A value shown in a form but not asked for: the one already chosen. */
const shown = (title: string, value: string) =>
  z.literal(value).default(value).meta({ title, readOnly: true });

export default workflow({
  name: 'provision_port',
  target: 'create',
  description: 'Picks a device, then one of its ports, configures it and asks for confirmation',
  // Two pages: the second offers the ports of the device chosen on the first.
  input: [
    z.object({ device: z.enum(devices()).meta({ title: 'Device' }) }),
    (state) => z.object({ port: z.enum(portsOf(state.device)).meta({ title: 'Port' }) }),
  ],
  // One process per device at a time: a second start for a device in use is refused (409).
  lockKeys: (input) => [`device:${input.device}`],
})
  .group('Configure', (b) =>
    b
      .step('Reserve port', ({ state }) => ({ reserved: `${state.device}:${state.port}` }))
      .step('Apply config', ({ state }) => ({
        config: `interface ${state.port}\n description provisioned\n no shutdown`,
      })),
  )
  .inputStep('Confirm', (state) =>
    z.object({
      device: shown('Device', state.device),
      port: shown('Port', state.port),
      confirmed: z.boolean().meta({ title: 'Configuration looks right' }),
    }),
  );
