#!/usr/bin/env node
/**
 * A walkthrough of the local KMS: start it with the CLI, manage a key with the ordinary AWS SDK
 * (the same requests the AWS CLI sends; the equivalent `aws` commands are printed), encrypt with
 * the library and with the CLI, and watch a disabled key stop decryption.
 *
 *   node examples/local-kms/walkthrough.mjs
 *
 * Keys live in a temporary directory unless WALKTHROUGH_DATA_DIR is set.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  CreateAliasCommand,
  CreateKeyCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EnableKeyRotationCommand,
  GetKeyRotationStatusCommand,
  KMSClient,
  ListAliasesCommand,
} from '@aws-sdk/client-kms';
import { Envelope } from 'kms-envelope';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const here = dirname(fileURLToPath(import.meta.url));
const bin = resolve(here, '../../dist/cli/main.js');
const work = mkdtempSync(join(tmpdir(), 'kms-envelope-walkthrough-'));
const dataDir = process.env.WALKTHROUGH_DATA_DIR ? resolve(process.env.WALKTHROUGH_DATA_DIR) : join(work, 'kms');
const step = (title) => console.log(`\n== ${title}`);
const aws = (cmd) => console.log(`   $ aws --endpoint-url "$URL" kms ${cmd}`);

// 1. Start the server the way a user would, and read its URL from stdout.
step('start the local KMS');
console.log(`   $ kms-envelope local-kms --port 0 --data-dir ${dataDir}`);
const server = spawn(process.execPath, [bin, 'local-kms', '--port', '0', '--data-dir', dataDir], {
  stdio: ['ignore', 'pipe', 'inherit'],
});
const url = await new Promise((res, rej) => {
  createInterface({ input: server.stdout }).once('line', (line) => {
    const m = /^listening on (http:\/\/\S+)$/.exec(line);
    if (m) res(m[1]);
    else rej(new Error(`unexpected output from local-kms: ${line}`));
  });
  server.once('exit', (code) => rej(new Error(`local-kms exited with ${code}`)));
});
console.log(`   listening on ${url}`);

// Any credentials do: the local KMS maps unknown access keys to its account root.
const credentials = { accessKeyId: 'AKIDWALKTHROUGH01', secretAccessKey: 'walkthrough' };
const kms = new KMSClient({ endpoint: url, region: 'us-east-1', credentials });

try {
  step('create a customer managed key and an alias');
  aws(`create-key --description "walkthrough key" --tags TagKey=team,TagValue=docs`);
  const { KeyMetadata: key } = await kms.send(
    new CreateKeyCommand({ Description: 'walkthrough key', Tags: [{ TagKey: 'team', TagValue: 'docs' }] }),
  );
  console.log(`   KeyId ${key.KeyId}\n   Arn   ${key.Arn}\n   State ${key.KeyState}, spec ${key.KeySpec}, usage ${key.KeyUsage}`);
  aws(`create-alias --alias-name alias/walkthrough --target-key-id ${key.KeyId}`);
  await kms.send(new CreateAliasCommand({ AliasName: 'alias/walkthrough', TargetKeyId: key.KeyId }));
  aws('list-aliases');
  const { Aliases } = await kms.send(new ListAliasesCommand({}));
  for (const a of Aliases ?? []) console.log(`   ${a.AliasName} -> ${a.TargetKeyId}`);

  step('turn on automatic rotation');
  aws(`enable-key-rotation --key-id ${key.KeyId}`);
  await kms.send(new EnableKeyRotationCommand({ KeyId: key.KeyId }));
  const rot = await kms.send(new GetKeyRotationStatusCommand({ KeyId: key.KeyId }));
  console.log(`   rotation enabled: ${rot.KeyRotationEnabled}, period ${rot.RotationPeriodInDays ?? 365} days`);

  step('encrypt and decrypt with the library (Envelope over the KMS endpoint)');
  // The key ARN: encrypting accepts the alias, but decrypting takes key ARNs (a message names the
  // key ARN that wrapped it; an alias can be re-pointed with UpdateAlias).
  const envelope = new Envelope({ kms: { keyId: key.Arn, client: kms } });
  const message = await envelope.encrypt('hello from the walkthrough', { context: { step: 'library' } });
  const { plaintext } = await envelope.decrypt(message, { context: { step: 'library' } });
  console.log(`   ${message.length}-byte ESDK message -> "${plaintext.toString()}" (${envelope.stats().kmsCalls} KMS calls)`);

  step('encrypt and decrypt a file with the CLI');
  const file = join(work, 'note.txt');
  writeFileSync(file, 'a file encrypted by the kms-envelope CLI\n');
  const cli = (args) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8' });
  console.log(`   $ kms-envelope encrypt --endpoint "$URL" --key alias/walkthrough -c step=cli -i note.txt -o note.txt.enc`);
  let r = cli(['encrypt', '--endpoint', url, '--key', 'alias/walkthrough', '-c', 'step=cli', '-i', file, '-o', `${file}.enc`]);
  if (r.status !== 0) throw new Error(`encrypt failed: ${r.stderr}`);
  console.log(`   $ kms-envelope decrypt --endpoint "$URL" -c step=cli -i note.txt.enc`);
  r = cli(['decrypt', '--endpoint', url, '-c', 'step=cli', '-i', `${file}.enc`]);
  console.log(`   exit ${r.status}: ${r.stdout.trim()}`);

  step('disable the key: decryption stops at KMS');
  aws(`disable-key --key-id ${key.KeyId}`);
  await kms.send(new DisableKeyCommand({ KeyId: key.KeyId }));
  const d = await kms.send(new DescribeKeyCommand({ KeyId: 'alias/walkthrough' }));
  console.log(`   state: ${d.KeyMetadata.KeyState}`);
  r = cli(['decrypt', '--endpoint', url, '-c', 'step=cli', '-i', `${file}.enc`]);
  console.log(`   kms-envelope decrypt -> exit ${r.status}: ${r.stderr.trim()}`);
  // A long-lived Envelope still holds the unwrapped data key in its cache until maxAgeMs passes:
  // disabling a key takes effect at the next KMS call, as with the AWS Encryption SDK's caching CMM.
  const cached = await envelope.decrypt(message, { context: { step: 'library' } });
  console.log(`   an Envelope with the data key cached still decrypts: "${cached.plaintext.toString()}"`);
  envelope.clearCache();
  const after = await envelope.decrypt(message, { context: { step: 'library' } }).then(
    () => 'decrypted',
    (e) => `${e.code}`,
  );
  console.log(`   after clearCache(): ${after}`);

  step('enable it again');
  aws(`enable-key --key-id ${key.KeyId}`);
  await kms.send(new EnableKeyCommand({ KeyId: key.KeyId }));
  r = cli(['decrypt', '--endpoint', url, '-c', 'step=cli', '-i', `${file}.enc`]);
  console.log(`   kms-envelope decrypt -> exit ${r.status}: ${r.stdout.trim()}`);
} finally {
  kms.destroy();
  const exited = new Promise((res) => server.once('exit', res));
  server.kill('SIGTERM');
  await exited;
  rmSync(work, { recursive: true, force: true });
  console.log('\n== stopped the local KMS');
}
