/** Help texts for `kms-envelope --help` and `kms-envelope <command> --help`. */
import { exitCodeTable } from './errors.js';

const KMS_FLAGS = `KMS selection (choose one; default: AWS KMS from the AWS environment):
  --local DIR           embedded local KMS, in process, keys stored in DIR
  --endpoint URL        any KMS-compatible endpoint, e.g. http://127.0.0.1:4599 (\`kms-envelope
                        local-kms\`); AWS credentials are used if set, dummy ones otherwise
  --region REGION       AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config;
                        key ARNs name their own region)
  --profile NAME        AWS profile for credentials and region
  --kms-timeout SECONDS  longest wait for KMS: all requests of the command and their retries
                        together, 1 .. 600 (default 30); then exit 4 (ERR_KEYRING_TIMEOUT).
                        Not with --local (no requests to bound)`;

const STORE_FLAGS = `Branch key store (STORE; choose one):
  --branch-key-store DIR  branch keys in a directory (embedded; several processes may share it)
  --branch-key-table NAME  branch keys in a DynamoDB table (the ESDK's layout; region and
                        credentials from the AWS environment, or --region)
  --dynamodb-endpoint URL  a DynamoDB-compatible endpoint for --branch-key-table (dummy
                        credentials when the environment has none)
  --logical-key-store-name NAME  required: bound into every branch key's KMS encryption context;
                        every reader of the same keys uses the same name (the ESDK's too)`;

const IO_FLAGS = `  -i, --input FILE      read FILE; - or absent: stdin
  -o, --output FILE     write FILE (via a temporary file renamed into place); - or absent: stdout.
                        An existing FILE is an error (exit 2) unless --force
  -f, --force           replace an existing output file
  -q, --quiet           no progress bar (it is only drawn when stderr is a terminal anyway)
  -h, --help            this help`;

export const MAIN_HELP = `kms-envelope: envelope encryption with KMS data keys in the AWS Encryption SDK message format

Usage:
  kms-envelope encrypt --key KEY [--context k=v]... [-i FILE] [-o FILE] [options]
  kms-envelope decrypt [--key KEY_ARN]... [--allow-account ID]... [--context k=v]... [-i FILE] [-o FILE]
  kms-envelope local-kms [--port 4599] [--data-dir DIR] [options]
  kms-envelope xks-proxy --config FILE | create-key --config FILE --label LABEL
  kms-envelope branch-key create|version|describe STORE [--key KEY_ARN] [options]
  kms-envelope encrypt|decrypt --branch-key ID STORE [--cache-ttl SECONDS] [-i FILE] [-o FILE] [options]
  kms-envelope <command> --help
  kms-envelope --version

Commands:
  encrypt     encrypt a file or stdin into an AWS Encryption SDK message
  decrypt     decrypt an AWS Encryption SDK message (any KMS key it names, or only --key ones)
  local-kms   run an offline server that speaks the AWS KMS JSON protocol
  xks-proxy   run an External Key Store (XKS) proxy on keys of a PKCS#11 token
  branch-key  create, rotate or describe a branch key of the hierarchical keyring (--branch-key)

Examples (offline):
  kms-envelope local-kms --port 4599 --data-dir .kms &
  # The AWS CLI needs a region and some credentials; the local KMS accepts any access key.
  export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
  aws --endpoint-url http://127.0.0.1:4599 kms create-key --query KeyMetadata.KeyId --output text
  aws --endpoint-url http://127.0.0.1:4599 kms create-alias --alias-name alias/app --target-key-id <KeyId>
  kms-envelope encrypt --endpoint http://127.0.0.1:4599 --key alias/app -c app=x -i a.txt -o a.enc
  kms-envelope decrypt --endpoint http://127.0.0.1:4599 -c app=x -i a.enc -o a.out.txt
  (--local DIR instead of --endpoint runs the same local KMS inside the command)

Hierarchical keyring (a fresh data key per message, one KMS call per branch key):
  kms-envelope branch-key create --local .kms --key <KeyArn> --branch-key-store .bk --logical-key-store-name app
  kms-envelope encrypt --local .kms --branch-key <id> --branch-key-store .bk --logical-key-store-name app -i a.txt -o a.enc

Errors are printed as \`kms-envelope: <code>: <message>\`. Exit status:
${exitCodeTable()}
`;

export const ENCRYPT_HELP = `Usage: kms-envelope encrypt --key KEY [--key KEY]... [--context k=v]... [-i FILE] [-o FILE] [options]

Encrypts the input under a fresh data key from KMS (GenerateDataKey with the first --key; each
further --key wraps the same data key with KMS Encrypt, so any of them can decrypt). The output is
an ordinary AWS Encryption SDK message (format v2), readable by any ESDK and its CLI.

Options:
  -k, --key KEY         KMS key: key id, key ARN, alias/NAME or alias ARN (required; repeatable).
                        A multi-Region key ARN (key/mrk-...) works like any key; a primary and its
                        replica (same mrk- id) together are refused (exit 2)
  -c, --context k=v     encryption context pair (repeatable); not secret, stored in the clear and
                        required again on decrypt with --context
      --suite ID        0x0478 (default: AES-256-GCM, HKDF-SHA512, key commitment) or 0x0578
                        (the same + ECDSA P-384 signature)
      --frame-length N  plaintext bytes per frame, 1 .. 16777216 (default 262144); 16 MiB is
                        the largest frame \`kms-envelope decrypt\` reads by default
${IO_FLAGS}

${KMS_FLAGS}

Hierarchical keyring: --branch-key ID (with STORE) wraps a fresh data key per message under the
branch key ID instead of calling KMS per message; --key KEY_ARN is then optional and pins the KMS
key that wraps the branch keys (default: the key each branch key item names).
      --branch-key ID   encrypt with this branch key (see \`kms-envelope branch-key --help\`)
      --cache-ttl SECONDS  how long a branch key decrypted by KMS is used, 1 .. 86400 (default 300)

${STORE_FLAGS}

Ciphertext is never written to a terminal: redirect stdout or use -o.
Exit status: see \`kms-envelope --help\`.
`;

export const DECRYPT_HELP = `Usage: kms-envelope decrypt [--key KEY_ARN]... [--allow-account ID]... [--context k=v]... [-i FILE] [-o FILE] [options]

Decrypts an AWS Encryption SDK message. Without --key it needs no key list: KMS is asked to
decrypt with the key ARN the message names (discovery). --key limits decryption to those keys
(key ARNs: a message names the key ARN that wrapped it, and an alias can be re-pointed);
--allow-account limits discovery to keys of those AWS accounts. Plaintext is released only after
it authenticated; a file output appears only when the whole message verified.

Options:
  -k, --key KEY_ARN     only decrypt with this KMS key ARN (repeatable). For a multi-Region key
                        (key/mrk-...) a replica's ARN also decrypts what the primary or another
                        replica wrapped, with one request to the --key ARN's Region; other keys
                        must match exactly. Not a primary and its replica together
      --region REGION   without --key: decrypt only in REGION. A multi-Region key is decrypted
                        with its replica there (its ARN rewritten to REGION), a single-Region key
                        only if it lives there; no request goes to another Region. With --key,
                        only the default AWS Region (key ARNs name their own)
      --allow-account ID  only keys of this 12-digit AWS account (repeatable; not with --key)
      --partition P     partition for --allow-account (default aws)
  -c, --context k=v     require this encryption context pair in the message (repeatable)
      --allow-legacy    also read legacy v1 messages without key commitment
      --unsigned-only   refuse signed messages (suite 0x0578, legacy 0x0214/0x0346/0x0378) right
                        after the header, before any KMS call (exit 12); every frame then reaches
                        stdout as soon as it verified (a signed message's last frame waits for its
                        signature). The ESDK CLI's --decrypt-unsigned.
      --max-encrypted-data-keys N  reject messages with more than N encrypted data keys
                        (1 .. 65535, default 10)
      --max-frame-length N  reject messages with frames over N bytes (1 .. 4294967295, default
                        16777216 = 16 MiB); decrypt holds one frame of plaintext in memory
${IO_FLAGS}

${KMS_FLAGS}

With --branch-key ID (and STORE, see \`kms-envelope encrypt --help\`): decrypt with that branch key
of the hierarchical keyring (any of its versions), --cache-ttl SECONDS as for encrypt; --key
KEY_ARN optionally pins the KMS key that wraps the branch keys. Not with --allow-account.

Exit status: see \`kms-envelope --help\` (3 tampered, 5 context mismatch, 7 no usable key, ...).
`;

export const BRANCH_KEY_HELP = `Usage:
  kms-envelope branch-key create --key KEY_ARN STORE [--branch-key-id ID --context k=v...] [options]
  kms-envelope branch-key version --branch-key ID --key KEY_ARN STORE [options]
  kms-envelope branch-key describe --branch-key ID STORE [--key KEY_ARN] [options]

Branch keys of the hierarchical keyring (the AWS Encryption SDK's KmsHierarchicalKeyRingNode;
the same items and KMS encryption contexts, so one store serves both). Each branch key is
encrypted by KMS under --key; \`encrypt --branch-key ID\` then derives a wrapping key from it per
message, so KMS sees one Decrypt per branch key and --cache-ttl, not one request per message.

  create     a new branch key (its first version, ACTIVE) and its beacon key; prints
             branch-key-id and version. --branch-key-id ID names it (default: a random UUID)
             and then needs --context k=v (repeatable), stored with every version
  version    rotate: a new ACTIVE version; messages under older versions still decrypt
  describe   the ACTIVE version, its create-time and kms-arn, the logical key store name and the
             branch key's context (never key material); the item is first authenticated with
             one KMS Decrypt

Options:
  -k, --key KEY_ARN     the KMS key ARN that wraps the branch keys (required for create, version)
      --branch-key ID   the branch key (version, describe)
      --branch-key-id ID  the id of a new branch key (create)
  -c, --context k=v     the new branch key's encryption context (create)
  -h, --help            this help

${STORE_FLAGS}

${KMS_FLAGS}

Output: \`name: value\` lines on stdout. Exit status: see \`kms-envelope --help\` (13: the branch
key store refused: no such branch key, the id exists, a concurrent version won, or the DynamoDB
endpoint lacks TransactWriteItems; the message starts with the reason).
`;
