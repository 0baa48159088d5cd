import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { ml_dsa44, ml_dsa65, ml_dsa87 } from '@noble/post-quantum/ml-dsa.js';
import { decodePkcs8Seed, decodeSpki, encodePkcs8Seed, encodeSpki, generatePqKeyPair, ML_KEM_CIPHERTEXT_BYTES, mlDsaSign, mlDsaVerify, mlKemDecapsulate, mlKemEncapsulate } from '../../src/local-kms/pq.js';
import { ed25519Sign, ed25519Verify } from '../../src/local-kms/eddsa.js';
import { createPrivateKey, createPublicKey } from 'node:crypto';

/**
 * Known answers for the ML-KEM / ML-DSA implementation the local KMS uses (@noble/post-quantum,
 * through src/local-kms/pq.ts) and for its key encodings; Ed25519ph from RFC 8032.
 *
 * Committed NIST ACVP cases (test/vectors/acvp/*.json, provenance in test/vectors/README.md):
 * always run; a missing or unreadable file fails the test.
 *
 * The full ACVP files (usnistgov/ACVP-Server, gen-val/json-files/ML-KEM-keyGen-FIPS203,
 * ML-KEM-encapDecap-FIPS203, ML-DSA-keyGen-FIPS204, ML-DSA-sigGen-FIPS204, ML-DSA-sigVer-FIPS204),
 * plain or gzipped, are still read from $KMS_ENVELOPE_ACVP_DIR or ../shared/vectors/acvp beside
 * the repository when present: with them every case of those files runs, where the committed
 * files hold a few per parameter set (sigGen is not committed; test/vectors/README.md says why).
 */

const repo = fileURLToPath(new URL('../..', import.meta.url));
const ACVP_DIR = [process.env.KMS_ENVELOPE_ACVP_DIR, join(repo, '..', 'shared', 'vectors', 'acvp')].find((d) => d && existsSync(d));

function acvp(dir: string, file: string): { testGroups: Array<Record<string, unknown> & { tests: Array<Record<string, string>> }> } {
  const base = join(ACVP_DIR!, dir, file);
  const raw = existsSync(base) ? readFileSync(base) : gunzipSync(readFileSync(`${base}.gz`));
  return JSON.parse(raw.toString('utf8'));
}

const hex = (s: string) => Buffer.from(s, 'hex');
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex').toUpperCase();
const KEM = { 'ML-KEM-512': ml_kem512, 'ML-KEM-768': ml_kem768, 'ML-KEM-1024': ml_kem1024 } as const;
const DSA = { 'ML-DSA-44': ml_dsa44, 'ML-DSA-65': ml_dsa65, 'ML-DSA-87': ml_dsa87 } as const;

const VECTORS = join(repo, 'test', 'vectors', 'acvp');

type Committed = { source: string; testGroups: Array<{ tgId: number; parameterSet: string; tests: Array<Record<string, string | number>> }> };

/** A committed vector file; readFileSync throws when it is missing, which fails the test. */
function committed(file: string): Committed {
  return JSON.parse(readFileSync(join(VECTORS, file), 'utf8'));
}

/** Public key bytes of each ML-KEM parameter set (FIPS 203 Table 3): 384k + 32. */
const EK_BYTES = { 'ML-KEM-512': 800, 'ML-KEM-768': 1184, 'ML-KEM-1024': 1568 } as const;

const shake256 = (outputLength: number, ...parts: Uint8Array[]) => {
  const h = createHash('shake256', { outputLength });
  for (const p of parts) h.update(p);
  return h.digest();
};

describe('NIST ACVP vectors committed in test/vectors/acvp (FIPS 203 / FIPS 204)', () => {
  it('ML-KEM keyGen: d||z gives NIST\'s dk (and the ek inside it); the local KMS\'s PKCS #8 seed key and SPKI of those keys encapsulate and decapsulate through pq.ts', async () => {
    const counts = new Map<string, number>();
    for (const g of committed('ML-KEM-keyGen-FIPS203.json').testGroups) {
      const ps = g.parameterSet as keyof typeof KEM;
      for (const t of g.tests) {
        const id = `${ps} tg ${g.tgId} tc ${t.tcId}`;
        const seed = hex(`${t.d}${t.z}`);
        const dk = hex(t.dk as string);
        // FIPS 203 Algorithm 16: dk = dk_PKE (384k bytes) || ek || H(ek) || z.
        const ek = dk.subarray(dk.length - 64 - EK_BYTES[ps], dk.length - 64);
        const k = KEM[ps].keygen(seed);
        expect(toHex(k.secretKey), id).toBe(t.dk);
        expect(toHex(k.publicKey), id).toBe(toHex(ek));
        // The local KMS's encodings of NIST's keys: SPKI of ek (DER read by openssl), PKCS #8 of the seed.
        const spki = encodeSpki(ps, ek);
        expect(execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: spki, encoding: 'utf8' }), id).toContain('BIT STRING');
        expect(toHex(decodeSpki(spki)!.publicKey), id).toBe(toHex(ek));
        const pkcs8 = encodePkcs8Seed(ps, seed);
        expect(decodePkcs8Seed(pkcs8), id).toMatchObject({ parameterSet: ps });
        expect(toHex(decodePkcs8Seed(pkcs8)!.seed), id).toBe(toHex(seed));
        // Through the wrappers: pq.ts expands the stored seed to NIST's dk and decapsulates.
        const { sharedSecret, ciphertext } = await mlKemEncapsulate(spki);
        expect((await mlKemDecapsulate(pkcs8, ciphertext))!.equals(sharedSecret), id).toBe(true);
        expect(toHex(KEM[ps].decapsulate(ciphertext, dk)), id).toBe(toHex(sharedSecret));
        counts.set(ps, (counts.get(ps) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(counts)).toEqual({ 'ML-KEM-512': 3, 'ML-KEM-768': 1, 'ML-KEM-1024': 1 });
  });

  it('ML-DSA keyGen: the seed gives NIST\'s pk and sk; a RAW and an EXTERNAL_MU signature of pq.ts with the PKCS #8 seed key verify under the SPKI of NIST\'s pk', async () => {
    const counts = new Map<string, number>();
    for (const g of committed('ML-DSA-keyGen-FIPS204.json').testGroups) {
      const ps = g.parameterSet as keyof typeof DSA;
      for (const t of g.tests) {
        const id = `${ps} tg ${g.tgId} tc ${t.tcId}`;
        const seed = hex(t.seed as string);
        const k = DSA[ps].keygen(seed);
        expect(toHex(k.publicKey), id).toBe(t.pk);
        expect(toHex(k.secretKey), id).toBe(t.sk);
        const pk = hex(t.pk as string);
        const spki = encodeSpki(ps, pk);
        expect(execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: spki, encoding: 'utf8' }), id).toContain('BIT STRING');
        expect(toHex(decodeSpki(spki)!.publicKey), id).toBe(t.pk);
        const pkcs8 = encodePkcs8Seed(ps, seed);
        expect(toHex(decodePkcs8Seed(pkcs8)!.seed), id).toBe(t.seed);
        const message = Buffer.from(`ACVP ${id}`);
        const raw = await mlDsaSign(pkcs8, 'RAW', message);
        expect(await mlDsaVerify(spki, 'RAW', message, raw), id).toBe(true);
        expect(DSA[ps].verify(raw, message, pk), id).toBe(true);
        // FIPS 204 §6.2, empty context, with node:crypto: mu = H(H(pk, 64) || 0 || 0 || M, 64).
        const mu = shake256(64, shake256(64, pk), Buffer.from([0, 0]), message);
        const viaMu = await mlDsaSign(pkcs8, 'EXTERNAL_MU', mu);
        expect(await mlDsaVerify(spki, 'RAW', message, viaMu), id).toBe(true);
        counts.set(ps, (counts.get(ps) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(counts)).toEqual({ 'ML-DSA-44': 2, 'ML-DSA-65': 1, 'ML-DSA-87': 1 });
  });

  it('ML-KEM encapsulation (ek, m -> c, K) and decapsulation (dk, c -> K, both the valid and the implicit-rejection path); NIST\'s ek in the local KMS\'s SPKI goes through mlKemEncapsulate', async () => {
    const counts = new Map<string, number>();
    let rejections = 0;
    for (const g of committed('ML-KEM-encapDecap-FIPS203.json').testGroups as Array<Committed['testGroups'][number] & { function: string; dk?: string }>) {
      const ps = g.parameterSet as keyof typeof KEM;
      for (const t of g.tests) {
        const id = `${ps} ${g.function} tg ${g.tgId} tc ${t.tcId}`;
        if (g.function === 'encapsulation') {
          // FIPS 203 Algorithm 17 (ML-KEM.Encaps_internal) with NIST's m: deterministic.
          const r = KEM[ps].encapsulate(hex(t.ek as string), hex(t.m as string));
          expect(toHex(r.cipherText), id).toBe(t.c);
          expect(toHex(r.sharedSecret), id).toBe(t.k);
          expect(r.cipherText.length, id).toBe(ML_KEM_CIPHERTEXT_BYTES[ps]);
          // The wrapper draws its own m, so only its form can be checked against NIST's key.
          const spki = encodeSpki(ps, hex(t.ek as string));
          expect(toHex(decodeSpki(spki)!.publicKey), id).toBe(t.ek);
          const fresh = await mlKemEncapsulate(spki);
          expect([fresh.ciphertext.length, fresh.sharedSecret.length], id).toEqual([ML_KEM_CIPHERTEXT_BYTES[ps], 32]);
        } else {
          // FIPS 203 Algorithm 18 (ML-KEM.Decaps_internal) with NIST's expanded dk. The local KMS
          // keeps only the seed form in PKCS #8 (decodePkcs8Seed), which NIST's dk is not, so
          // mlKemDecapsulate cannot take it; its decapsulation of its own keys is checked above.
          const dk = hex(g.dk!);
          expect(toHex(KEM[ps].decapsulate(hex(t.c as string), dk)), id).toBe(t.k);
          // Which path the case takes, computed with node:crypto: K = J(z || c) = SHAKE256(z || c, 32)
          // is the implicit rejection of a ciphertext that does not re-encrypt (FIPS 203 Algorithm 18, line 8).
          const z = dk.subarray(dk.length - 32);
          if (toHex(shake256(32, z, hex(t.c as string))) === t.k) rejections++;
          // ek is inside dk (dk_PKE || ek || H(ek) || z): the wrapper encapsulates to its SPKI and
          // NIST's dk decapsulates that ciphertext to the wrapper's secret.
          const ek = dk.subarray(dk.length - 64 - EK_BYTES[ps], dk.length - 64);
          const { sharedSecret, ciphertext } = await mlKemEncapsulate(encodeSpki(ps, ek));
          expect(toHex(KEM[ps].decapsulate(ciphertext, dk)), id).toBe(toHex(sharedSecret));
        }
        counts.set(`${ps} ${g.function}`, (counts.get(`${ps} ${g.function}`) ?? 0) + 1);
      }
    }
    expect(Object.fromEntries(counts)).toEqual({
      'ML-KEM-512 encapsulation': 1, 'ML-KEM-768 encapsulation': 1, 'ML-KEM-1024 encapsulation': 1,
      'ML-KEM-512 decapsulation': 1, 'ML-KEM-768 decapsulation': 1, 'ML-KEM-1024 decapsulation': 1,
    });
    // tc 76 (512) and tc 96 (1024) are rejected ciphertexts, tc 86 (768) a valid one.
    expect(rejections).toBe(2);
  });

  it('ML-DSA sigVer, external mu: the local KMS\'s Verify EXTERNAL_MU with the SPKI of NIST\'s pk accepts NIST\'s valid signatures and refuses the invalid ones', async () => {
    const counts = new Map<string, { passed: number; failed: number }>();
    for (const g of committed('ML-DSA-sigVer-FIPS204.json').testGroups as Array<Committed['testGroups'][number] & { signatureInterface: string; externalMu: boolean }>) {
      const ps = g.parameterSet as keyof typeof DSA;
      // FIPS 204 Algorithm 8 (ML-DSA.Verify_internal) over the caller's mu, which is what
      // MessageType EXTERNAL_MU means; the file's groups are only these.
      expect([g.signatureInterface, g.externalMu]).toEqual(['internal', true]);
      for (const t of g.tests) {
        const id = `${ps} sigVer tg ${g.tgId} tc ${t.tcId}`;
        const spki = encodeSpki(ps, hex(t.pk as string));
        expect(toHex(decodeSpki(spki)!.publicKey), id).toBe(t.pk);
        const want = t.testPassed as unknown as boolean;
        expect(await mlDsaVerify(spki, 'EXTERNAL_MU', hex(t.mu as string), hex(t.signature as string)), id).toBe(want);
        expect(DSA[ps].internal.verify(hex(t.signature as string), hex(t.mu as string), hex(t.pk as string), { externalMu: true }), id).toBe(want);
        const c = counts.get(ps) ?? { passed: 0, failed: 0 };
        c[want ? 'passed' : 'failed']++;
        counts.set(ps, c);
      }
    }
    expect(Object.fromEntries(counts)).toEqual(SIGVER_COUNTS);
  });
});

/** One accepted and one refused signature per parameter set in ML-DSA-sigVer-FIPS204.json. */
const SIGVER_COUNTS = {
  'ML-DSA-44': { passed: 1, failed: 1 },
  'ML-DSA-65': { passed: 1, failed: 1 },
  'ML-DSA-87': { passed: 1, failed: 1 },
};

describe.skipIf(!ACVP_DIR)('NIST ACVP vectors, full files from outside the repository (FIPS 203 / FIPS 204)', () => {
  it('ML-KEM keyGen: the seed d||z the local KMS stores gives NIST\'s ek and dk (all parameter sets, every case)', async () => {
    let n = 0;
    for (const g of acvp('ML-KEM-keyGen-FIPS203', 'internalProjection.json').testGroups) {
      const ps = g.parameterSet as keyof typeof KEM;
      for (const t of g.tests) {
        const seed = hex(t.d! + t.z!);
        const k = KEM[ps].keygen(seed);
        expect(toHex(k.publicKey), `${ps} tc ${t.tcId}`).toBe(t.ek);
        expect(toHex(k.secretKey), `${ps} tc ${t.tcId}`).toBe(t.dk);
        // Through the local KMS's own encodings: PKCS #8 seed form in, SPKI out.
        const pkcs8 = encodePkcs8Seed(ps, seed);
        expect(decodePkcs8Seed(pkcs8)).toMatchObject({ parameterSet: ps });
        expect(toHex(decodeSpki(encodeSpki(ps, k.publicKey))!.publicKey)).toBe(t.ek);
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(75);
  });

  it('ML-KEM encapsulation (ek, m → c, K) and decapsulation (dk, c → K, implicit rejection included)', async () => {
    let enc = 0;
    let dec = 0;
    for (const g of acvp('ML-KEM-encapDecap-FIPS203', 'internalProjection.json').testGroups) {
      const ps = g.parameterSet as keyof typeof KEM;
      for (const t of g.tests) {
        if (g.function === 'encapsulation') {
          const r = KEM[ps].encapsulate(hex(t.ek!), hex(t.m!));
          expect(toHex(r.cipherText)).toBe(t.c);
          expect(toHex(r.sharedSecret)).toBe(t.k);
          enc++;
        } else if (g.function === 'decapsulation') {
          expect(toHex(KEM[ps].decapsulate(hex(t.c!), hex(t.dk!))), `${ps} tc ${t.tcId} ${t.reason}`).toBe(t.k);
          dec++;
        }
      }
    }
    expect(enc).toBeGreaterThanOrEqual(75);
    expect(dec).toBeGreaterThanOrEqual(30);
  });

  it('ML-DSA keyGen: the 32-byte seed the local KMS stores gives NIST\'s pk and sk', () => {
    let n = 0;
    for (const g of acvp('ML-DSA-keyGen-FIPS204', 'internalProjection.json').testGroups) {
      const ps = g.parameterSet as keyof typeof DSA;
      for (const t of g.tests) {
        const k = DSA[ps].keygen(hex(t.seed!));
        expect(toHex(k.publicKey)).toBe(t.pk);
        expect(toHex(k.secretKey)).toBe(t.sk);
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(75);
  });

  it('ML-DSA sigGen, deterministic: pure ML-DSA (what Sign RAW does, any context) and the external-mu interface (Sign EXTERNAL_MU)', () => {
    const prompt = acvp('ML-DSA-sigGen-FIPS204', 'prompt.json');
    const expected = new Map<string, string>();
    for (const g of acvp('ML-DSA-sigGen-FIPS204', 'expectedResults.json').testGroups) for (const t of g.tests) expected.set(`${g.tgId}/${t.tcId}`, t.signature!);
    let pure = 0;
    let mu = 0;
    for (const g of prompt.testGroups) {
      if (g.deterministic !== true) continue;
      const ps = g.parameterSet as keyof typeof DSA;
      for (const t of g.tests) {
        const want = expected.get(`${g.tgId}/${t.tcId}`);
        if (g.signatureInterface === 'external' && g.preHash === 'pure') {
          expect(toHex(DSA[ps].sign(hex(t.message!), hex(t.sk!), { context: hex(t.context ?? ''), extraEntropy: false }))).toBe(want);
          pure++;
        } else if (g.signatureInterface === 'internal' && g.externalMu === true) {
          expect(toHex(DSA[ps].internal.sign(hex(t.mu!), hex(t.sk!), { externalMu: true, extraEntropy: false }))).toBe(want);
          mu++;
        }
      }
    }
    expect(pure).toBeGreaterThanOrEqual(45);
    expect(mu).toBeGreaterThanOrEqual(45);
  });

  it('ML-DSA sigVer: accepts NIST\'s valid signatures and refuses the invalid ones (pure and external mu)', () => {
    let n = 0;
    for (const g of acvp('ML-DSA-sigVer-FIPS204', 'internalProjection.json').testGroups) {
      const ps = g.parameterSet as keyof typeof DSA;
      const isPure = g.signatureInterface === 'external' && g.preHash === 'pure';
      const isMu = g.signatureInterface === 'internal' && g.externalMu === true;
      if (!isPure && !isMu) continue;
      for (const t of g.tests) {
        const ok = isPure
          ? DSA[ps].verify(hex(t.signature!), hex(t.message!), hex(t.pk!), { context: hex(t.context ?? '') })
          : DSA[ps].internal.verify(hex(t.signature!), hex(t.mu!), hex(t.pk!), { externalMu: true });
        expect(ok, `${ps} tc ${t.tcId} ${t.reason}`).toBe(t.testPassed as unknown as boolean);
        n++;
      }
    }
    expect(n).toBeGreaterThanOrEqual(90);
  });
});

it.runIf(!ACVP_DIR)('NIST ACVP vectors, full files: not found, their tests were skipped (see test/vectors/README.md)', () => {
  // Says so in the test list instead of passing silently.
  expect(ACVP_DIR).toBeUndefined();
});

describe('key encodings of the local KMS', () => {
  const openssl = (der: Buffer): string => execFileSync('openssl', ['asn1parse', '-inform', 'DER'], { input: der, encoding: 'utf8' });

  it.each([
    ['ML-KEM-512', '2.16.840.1.101.3.4.4.1', 800],
    ['ML-KEM-768', '2.16.840.1.101.3.4.4.2', 1184],
    ['ML-KEM-1024', '2.16.840.1.101.3.4.4.3', 1568],
    ['ML-DSA-44', '2.16.840.1.101.3.4.3.17', 1312],
    ['ML-DSA-65', '2.16.840.1.101.3.4.3.18', 1952],
    ['ML-DSA-87', '2.16.840.1.101.3.4.3.19', 2592],
  ])('%s: SPKI names OID %s with absent parameters and holds the %i-byte FIPS public key; PKCS #8 holds the seed', async (ps, oid, pkBytes) => {
    const pair = await generatePqKeyPair(ps);
    // OpenSSL 3.0 does not know these algorithms; its DER parser reads the structure and the OID.
    const spki = openssl(pair.publicKey);
    expect(spki).toContain(`OBJECT            :${oid}`);
    expect(spki).not.toContain('NULL');
    expect(spki).toContain(`BIT STRING`);
    expect(decodeSpki(pair.publicKey)!.publicKey.length).toBe(pkBytes);
    const p8 = openssl(pair.privateKey);
    expect(p8).toContain(`OBJECT            :${oid}`);
    expect(p8).toMatch(/INTEGER +:00/);
    const seed = decodePkcs8Seed(pair.privateKey)!.seed;
    expect(seed.length).toBe(ps.startsWith('ML-KEM') ? 64 : 32);
    // The public key is the one the seed generates (FIPS 203 Algorithm 16 / FIPS 204 Algorithm 1).
    const impl = ps.startsWith('ML-KEM') ? KEM[ps as keyof typeof KEM] : DSA[ps as keyof typeof DSA];
    expect(toHex(impl.keygen(seed).publicKey)).toBe(toHex(decodeSpki(pair.publicKey)!.publicKey));
  });

  it('ML-KEM through the wrappers: Encapsulate to the SPKI, Decapsulate with the PKCS #8 seed key, same 32 bytes; a wrong-length ciphertext is refused', async () => {
    const pair = await generatePqKeyPair('ML-KEM-768');
    const { sharedSecret, ciphertext } = await mlKemEncapsulate(pair.publicKey);
    expect(sharedSecret.length).toBe(32);
    expect(ciphertext.length).toBe(1088);
    expect((await mlKemDecapsulate(pair.privateKey, ciphertext))!.equals(sharedSecret)).toBe(true);
    expect(await mlKemDecapsulate(pair.privateKey, ciphertext.subarray(1))).toBeUndefined();
    // Altered ciphertext: implicit rejection, 32 other bytes, no error (FIPS 203 §6.3).
    const altered = Buffer.from(ciphertext);
    altered[0]! ^= 1;
    const rejected = (await mlKemDecapsulate(pair.privateKey, altered))!;
    expect(rejected.length).toBe(32);
    expect(rejected.equals(sharedSecret)).toBe(false);
  });

  it('ML-DSA through the wrappers: an EXTERNAL_MU signature over mu = SHAKE256(SHAKE256(pk, 64) || 0 || 0 || M, 64) verifies as a RAW signature of M', async () => {
    const pair = await generatePqKeyPair('ML-DSA-65');
    const pk = decodeSpki(pair.publicKey)!.publicKey;
    const message = Buffer.from('a message longer than nothing');
    // FIPS 204 §6.2 with an empty context, computed with node:crypto, not the implementation.
    const tr = createHash('shake256', { outputLength: 64 }).update(pk).digest();
    const mu = createHash('shake256', { outputLength: 64 }).update(tr).update(Buffer.from([0, 0])).update(message).digest();
    const sig = await mlDsaSign(pair.privateKey, 'EXTERNAL_MU', mu);
    expect(await mlDsaVerify(pair.publicKey, 'RAW', message, sig)).toBe(true);
    expect(await mlDsaVerify(pair.publicKey, 'EXTERNAL_MU', mu, sig)).toBe(true);
    expect(await mlDsaVerify(pair.publicKey, 'RAW', Buffer.from('another message'), sig)).toBe(false);
  });
});

describe('Ed25519ph (RFC 8032 §7.3, test "abc")', () => {
  // RFC 8032 §7.3: SECRET KEY, PUBLIC KEY, MESSAGE "abc", SIGNATURE of Ed25519ph.
  const secret = '833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42';
  const publicKey = 'ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf';
  const signature =
    '98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae4131f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406';
  const pkcs8 = createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: Buffer.from(secret, 'hex').toString('base64url'), x: Buffer.from(publicKey, 'hex').toString('base64url') }, format: 'jwk' }).export({ type: 'pkcs8', format: 'der' });
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({ type: 'spki', format: 'der' });

  it('signs "abc" to the RFC signature and verifies it (Ed25519ph is deterministic)', async () => {
    const sig = await ed25519Sign(pkcs8, 'ED25519_PH_SHA_512', Buffer.from('abc'));
    expect(sig.toString('hex')).toBe(signature);
    expect(await ed25519Verify(spki, 'ED25519_PH_SHA_512', Buffer.from('abc'), sig)).toBe(true);
    expect(await ed25519Verify(spki, 'ED25519_SHA_512', Buffer.from('abc'), sig)).toBe(false);
  });
});
