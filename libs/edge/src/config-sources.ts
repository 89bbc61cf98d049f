import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

/** A bad option; main prints the message (which names the option and where it came from) and exits 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface OptionDef {
  type: 'string' | 'boolean';
  /** Shown by --help. */
  help: string;
}

interface RawValue {
  value: string | boolean;
  /** Where the value came from, for error messages: `--flag`, `env NAME` or `config file key "k"`. */
  source: string;
}

/**
 * Reads each option from argv, then the environment (`<PREFIX><FLAG_IN_SNAKE_CASE>`), then a JSON
 * config file (`--config` or `<PREFIX>CONFIG`, camelCase keys), in that order of precedence,
 * and converts it with a message that names the option when the value is bad.
 */
export class OptionSources {
  private readonly argv: Record<string, string | boolean | undefined>;
  private readonly file: Record<string, unknown>;
  private readonly filePath: string | undefined;

  constructor(
    private readonly defs: Readonly<Record<string, OptionDef>>,
    args: readonly string[],
    private readonly env: NodeJS.ProcessEnv,
    private readonly envPrefix: string,
  ) {
    const options: Record<string, { type: 'string' | 'boolean' }> = { config: { type: 'string' } };
    for (const [flag, def] of Object.entries(defs)) options[flag] = { type: def.type };
    try {
      this.argv = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }).values;
    } catch (err) {
      throw new ConfigError(err instanceof Error ? err.message : String(err));
    }
    const configPath = this.argv.config ?? env[`${envPrefix}CONFIG`];
    this.filePath = typeof configPath === 'string' && configPath !== '' ? configPath : undefined;
    this.file = this.filePath === undefined ? {} : this.readFile(this.filePath);
  }

  envName(flag: string): string {
    return `${this.envPrefix}${flag.toUpperCase().replace(/-/g, '_')}`;
  }

  string(flag: string): string | undefined;
  string(flag: string, fallback: string): string;
  string(flag: string, fallback?: string): string | undefined {
    const raw = this.raw(flag);
    if (raw === undefined) return fallback;
    if (typeof raw.value !== 'string' || raw.value === '') {
      throw new ConfigError(`${raw.source} must be a non-empty string`);
    }
    return raw.value;
  }

  required(flag: string): string {
    const value = this.string(flag);
    if (value === undefined) {
      throw new ConfigError(
        `--${flag} is required (or set ${this.envName(flag)}, or "${camel(flag)}" in --config)`,
      );
    }
    return value;
  }

  matching(flag: string, pattern: RegExp, what: string): string | undefined {
    const value = this.string(flag);
    if (value !== undefined && !pattern.test(value)) {
      throw new ConfigError(`${this.sourceOf(flag)} must be ${what}, got "${value}"`);
    }
    return value;
  }

  oneOf<T extends string>(flag: string, allowed: readonly T[], fallback: T): T {
    const value = this.string(flag, fallback);
    if (!(allowed as readonly string[]).includes(value)) {
      throw new ConfigError(`${this.sourceOf(flag)} must be one of ${allowed.join(', ')}, got "${value}"`);
    }
    return value as T;
  }

  integer(flag: string, fallback: number, min: number, max: number): number {
    const raw = this.raw(flag);
    if (raw === undefined) return fallback;
    const text = String(raw.value);
    const value = /^-?\d+$/.test(text) ? Number(text) : NaN;
    if (!Number.isSafeInteger(value) || value < min || value > max) {
      throw new ConfigError(`${raw.source} must be an integer from ${min} to ${max}, got "${text}"`);
    }
    return value;
  }

  boolean(flag: string, fallback: boolean): boolean {
    const raw = this.raw(flag);
    if (raw === undefined) return fallback;
    if (typeof raw.value === 'boolean') return raw.value;
    if (/^(1|true|yes)$/i.test(raw.value)) return true;
    if (/^(0|false|no)$/i.test(raw.value)) return false;
    throw new ConfigError(`${raw.source} must be true or false, got "${raw.value}"`);
  }

  private sourceOf(flag: string): string {
    return this.raw(flag)?.source ?? `--${flag}`;
  }

  private raw(flag: string): RawValue | undefined {
    const def = this.defs[flag];
    if (def === undefined) throw new Error(`option --${flag} is not declared`);
    const fromArgv = this.argv[flag];
    if (fromArgv !== undefined) return { value: fromArgv, source: `--${flag}` };
    const envName = this.envName(flag);
    const fromEnv = this.env[envName];
    if (fromEnv !== undefined && fromEnv !== '') return { value: fromEnv, source: `env ${envName}` };
    const key = camel(flag);
    const fromFile = this.file[key];
    if (fromFile === undefined || fromFile === null) return undefined;
    const source = `"${key}" in ${this.filePath ?? 'config file'}`;
    if (typeof fromFile === 'string' || typeof fromFile === 'boolean') return { value: fromFile, source };
    if (typeof fromFile === 'number') return { value: String(fromFile), source };
    throw new ConfigError(`${source} must be a string, number or boolean`);
  }

  private readFile(path: string): Record<string, unknown> {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new ConfigError(`--config ${path}: ${err instanceof Error ? err.message : String(err)}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`--config ${path}: must hold a JSON object`);
    }
    const known = new Set(Object.keys(this.defs).map(camel));
    const unknown = Object.keys(parsed).filter((key) => !known.has(key));
    if (unknown.length > 0) throw new ConfigError(`--config ${path}: unknown key(s) ${unknown.join(', ')}`);
    return parsed as Record<string, unknown>;
  }
}

export function camel(flag: string): string {
  return flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

export function usage(defs: Readonly<Record<string, OptionDef>>, envPrefix: string): string {
  const lines = Object.entries(defs).map(([flag, def]) => {
    const left = `  --${flag}${def.type === 'string' ? ' VALUE' : ''}`;
    return `${left.padEnd(30)} ${def.help} [${envPrefix}${flag.toUpperCase().replace(/-/g, '_')}]`;
  });
  lines.push(`  --config FILE${' '.repeat(16)} JSON file with camelCase keys [${envPrefix}CONFIG]`);
  return lines.join('\n');
}
