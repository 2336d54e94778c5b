// A small inventory of devices for the example workflows (files starting with _ are not workflows).
export const INVENTORY: Record<string, string[]> = {
  'leaf-1': ['Ethernet1', 'Ethernet2', 'Ethernet3', 'Ethernet4'],
  'leaf-2': ['Ethernet1', 'Ethernet2'],
  'spine-1': ['Ethernet49/1', 'Ethernet50/1'],
};

export const devices = () => Object.keys(INVENTORY) as [string, ...string[]];

export function portsOf(device: string): [string, ...string[]] {
  const ports = INVENTORY[device];
  if (!ports?.length) throw new Error(`unknown device ${JSON.stringify(device)}`);
  return ports as [string, ...string[]];
}
