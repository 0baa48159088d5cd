/**
 * One rule for every option that takes a value, in every kms-envelope command (encrypt, decrypt,
 * local-kms, local-kms key-policy): the value is the next token unless given inline (`--opt=V`,
 * `-oV`), and a next token that looks like an option is a forgotten value, not the value.
 * `--data-dir --test-clock` would otherwise create a directory named "--test-clock".
 *
 * `-` alone is a value (stdin/stdout for -i/-o). A value that really starts with `-` is written
 * inline: `--context=-x=1`, `-o-file`. This matches what node:util parseArgs does in strict mode,
 * with a message that names the option and says what to do.
 */
export interface ValueOptionSpec {
  type: 'string' | 'boolean';
  short?: string;
}

/** The usage message for the first value-taking option without a value, or undefined. */
export function missingOptionValue(argv: readonly string[], options: Readonly<Record<string, ValueOptionSpec>>): string | undefined {
  const byShort = new Map<string, string>();
  for (const [long, spec] of Object.entries(options)) if (spec.short !== undefined) byShort.set(spec.short, long);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return undefined; // everything after is positional
    let long: string | undefined;
    let spelled = '';
    if (arg.startsWith('--')) {
      if (arg.includes('=')) continue; // inline value, however odd: explicit
      const name = arg.slice(2);
      if (Object.hasOwn(options, name) && options[name]!.type === 'string') {
        long = name;
        spelled = arg;
      }
    } else if (arg.startsWith('-') && arg.length > 1) {
      // -o FILE, -oFILE, or a group of flags ending in one that takes a value (-qo FILE).
      for (let j = 1; j < arg.length; j++) {
        const name = byShort.get(arg[j]!);
        if (name === undefined) break; // unknown: the parser reports it
        if (options[name]!.type === 'string') {
          if (j === arg.length - 1) {
            long = name;
            spelled = `-${arg[j]}`;
          }
          break; // the rest of the token is its value
        }
      }
    }
    if (long === undefined) continue;
    const label = spelled === `--${long}` ? spelled : `${spelled} (--${long})`;
    const next = argv[i + 1];
    if (next === undefined) return `${label} needs a value`;
    if (next.startsWith('-') && next !== '-') {
      return next.startsWith('--')
        ? `${label} needs a value, got the option ${next} (write --${long}=${next} if that is the value)`
        : `${label} needs a value, got ${JSON.stringify(next)}, which looks like an option (write --${long}=${next} if that is the value)`;
    }
    i++; // the value
  }
  return undefined;
}
