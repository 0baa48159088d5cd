#!/usr/bin/env bash
# Creating a KMS key the way the AWS console does it, with the AWS CLI pointed at the local KMS,
# then importing key material with OpenSSL. The README's "Local KMS" section shows these commands.
# It can run again on the same data directory: every run creates new keys and points alias/orders
# at the newest.
#
# Run against a local KMS started with the principals file below, from the clone, e.g.
#   node dist/cli/main.js local-kms --port 4599 --data-dir .local-kms --principals examples/aws-cli/principals.json &
# Environment: KMS_ENDPOINT (default http://127.0.0.1:4599), WORK_DIR (default: a temporary
# directory, removed on exit), KMS_ENVELOPE_BIN (default: this checkout's built CLI, dist/cli/main.js).
# Files (policy.json, the import token, wrapped key material) go to the work directory, never to
# the current one; the plaintext key material is removed on every exit.
set -euo pipefail
ENDPOINT=${KMS_ENDPOINT:-http://127.0.0.1:4599}
# Resolved before the cd below: from a temp dir `npx kms-envelope` would not see this checkout
# and would look the name up in the npm registry instead.
REPO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${KMS_ENVELOPE_BIN:-node $REPO_DIR/dist/cli/main.js}
if [ -z "${WORK_DIR:-}" ]; then
  WORK_DIR=$(mktemp -d)
  OWN_WORK_DIR=1
fi
cleanup() {
  rm -f "$WORK_DIR/PlaintextKeyMaterial.bin"
  if [ -n "${OWN_WORK_DIR:-}" ]; then rm -rf "$WORK_DIR"; fi
}
trap cleanup EXIT
cd "$WORK_DIR"
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
kms() { aws --endpoint-url "$ENDPOINT" kms "$@"; }
as_root()  { AWS_ACCESS_KEY_ID=AKIAEXAMPLEROOT0001 AWS_SECRET_ACCESS_KEY=root-secret "$@"; }
as_admin() { AWS_ACCESS_KEY_ID=AKIAEXAMPLEADMIN001 AWS_SECRET_ACCESS_KEY=admin-secret "$@"; }
as_app()   { AWS_ACCESS_KEY_ID=AKIAEXAMPLEORDERS01 AWS_SECRET_ACCESS_KEY=orders-secret "$@"; }

echo "== Steps 1-4: key type, labels, administrators, users -> the policy to review"
$BIN local-kms key-policy \
  --admin arn:aws:iam::111122223333:user/KeyAdmin \
  --user arn:aws:iam::111122223333:role/OrdersService > policy.json
cat policy.json

echo "== Step 5: create the key (symmetric, encrypt and decrypt) with description, tags and policy"
KEY_ID=$(as_root kms create-key \
  --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT \
  --description "Orders service data keys" \
  --tags TagKey=team,TagValue=payments TagKey=env,TagValue=dev \
  --policy file://policy.json \
  --query KeyMetadata.KeyId --output text)
# Re-runnable: each run creates a new key; alias/orders is created on the first run and re-pointed
# at the new key when it already exists (an earlier run, or the README's commands, on the same
# --data-dir). The earlier keys stay, as in AWS: schedule their deletion when done with them.
if as_root kms describe-key --key-id alias/orders > /dev/null 2>&1; then
  as_root kms update-alias --alias-name alias/orders --target-key-id "$KEY_ID"
  echo "alias/orders exists: re-pointed at the new key $KEY_ID"
else
  as_root kms create-alias --alias-name alias/orders --target-key-id "$KEY_ID"
fi
as_root kms list-resource-tags --key-id "$KEY_ID" --output text
as_root kms get-key-policy --key-id "$KEY_ID" --policy-name default --output text > /dev/null

echo "== The key user can make data keys; the administrator cannot"
as_app kms generate-data-key --key-id alias/orders --key-spec AES_256 --query KeyId --output text
if as_admin kms generate-data-key --key-id alias/orders --key-spec AES_256 2> denied.txt; then
  echo "administrator was allowed to use the key" >&2; exit 1
fi
grep -o AccessDeniedException denied.txt
echo "== The administrator can schedule deletion (and cancel it); the key user cannot"
as_admin kms schedule-key-deletion --key-id "$KEY_ID" --pending-window-in-days 7 --query KeyState --output text
as_admin kms cancel-key-deletion --key-id "$KEY_ID" --query KeyId --output text > /dev/null
as_admin kms enable-key --key-id "$KEY_ID"
if as_app kms schedule-key-deletion --key-id "$KEY_ID" 2> denied.txt; then
  echo "key user was allowed to delete the key" >&2; exit 1
fi
grep -o AccessDeniedException denied.txt

echo "== With a principals file nobody is anonymous: an unsigned request and an unknown access key are refused"
curl -s "$ENDPOINT" -H 'Content-Type: application/x-amz-json-1.1' -H 'X-Amz-Target: TrentService.ScheduleKeyDeletion' \
  -d "{\"KeyId\": \"$KEY_ID\", \"PendingWindowInDays\": 7}" | grep -o MissingAuthenticationTokenException
if AWS_ACCESS_KEY_ID=AKIAEXAMPLEUNKNOWN01 AWS_SECRET_ACCESS_KEY=guess kms list-keys 2> denied.txt; then
  echo "an unknown access key was accepted" >&2; exit 1
fi
grep -o UnrecognizedClientException denied.txt
as_root kms describe-key --key-id "$KEY_ID" --query KeyMetadata.KeyState --output text

echo "== Import key material (origin EXTERNAL) with OpenSSL"
IMPORTED=$(as_root kms create-key --origin EXTERNAL --description "Imported key" --query KeyMetadata.KeyId --output text)
# One call returns both: a second GetParametersForImport would invalidate the first token.
read -r PUBLIC_KEY IMPORT_TOKEN < <(as_root kms get-parameters-for-import --key-id "$IMPORTED" \
  --wrapping-algorithm RSAES_OAEP_SHA_1 --wrapping-key-spec RSA_2048 \
  --query '[PublicKey, ImportToken]' --output text)
echo "$PUBLIC_KEY" | openssl enc -d -base64 -A -out PublicKey.bin
echo "$IMPORT_TOKEN" | openssl enc -d -base64 -A -out ImportToken.bin
openssl rand -out PlaintextKeyMaterial.bin 32
openssl pkeyutl -encrypt -in PlaintextKeyMaterial.bin -out EncryptedKeyMaterial.bin \
  -inkey PublicKey.bin -keyform DER -pubin \
  -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha1
as_root kms import-key-material --key-id "$IMPORTED" \
  --encrypted-key-material fileb://EncryptedKeyMaterial.bin \
  --import-token fileb://ImportToken.bin \
  --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE
rm -f PlaintextKeyMaterial.bin   # the key in the clear: not needed once it is imported
as_root kms describe-key --key-id "$IMPORTED" --query KeyMetadata.KeyState --output text
as_root kms generate-data-key --key-id "$IMPORTED" --key-spec AES_256 --query KeyId --output text
echo "walkthrough complete"
