// A small inventory of devices for the example workflows (files starting with _ are not workflows).
export const INVENTORY: Record<string, string[]> = {
  'leaf-1': ['Ethernet1', 'Ethernet2', 'Ethernet3', 'Ethernet4'],
  'leaf-2': ['Ethernet1', 'Ethernet2'],
  'spine-1': ['Ethernet49/1', 'Ethernet50/1'],
};

/** A list with at least one entry (what `z.enum` takes); `error` when it is empty. */
function nonEmpty(list: string[], error: string): [string, ...string[]] {
  const [first, ...rest] = list;
  if (first === undefined) throw new Error(error);
  return [first, ...rest];
}

export const devices = () => nonEmpty(Object.keys(INVENTORY), 'the inventory is empty');

export function portsOf(device: string): [string, ...string[]] {
  return nonEmpty(INVENTORY[device] ?? [], `unknown device ${JSON.stringify(device)}`);
}
