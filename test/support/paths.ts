import path from 'node:path';

export const root = path.resolve(import.meta.dirname, '..', '..');
export const fixtures = (name: string) => path.join(root, 'test', 'fixtures', name);
