import { randomBytes } from 'node:crypto';
import { ACCESS_KEY_ID, PATH, SECRET, startFakeXks } from './xks-fake.js';

/** TEMPORARY (development only): replaced by the real proxy when src/xks-proxy lands. */
export interface ProxyUnderTest {
  url: string;
  path: string;
  accessKeyId: string;
  secret: string;
  keyExists(id: string): Promise<boolean>;
  close(): Promise<void>;
}

export const proxySkipReason: string | undefined = undefined;

export async function startProxyUnderTest(keys: readonly string[]): Promise<ProxyUnderTest> {
  const fake = await startFakeXks();
  for (const id of keys) fake.keys.set(id, { key: randomBytes(32) });
  return {
    url: fake.url,
    path: PATH,
    accessKeyId: ACCESS_KEY_ID,
    secret: SECRET,
    keyExists: async (id) => fake.keys.has(id),
    close: () => fake.close(),
  };
}
