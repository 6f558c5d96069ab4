/**
 * A snapshot of every setting's typed value and where it came from. Immutable: a reload builds a
 * new Settings and `changedSettings` says which values differ, so the postmaster can tell the
 * components what changed and warn about the ones that need a restart.
 */
import { assert } from '@walship/engine/errors';
import {
  SETTING_DEFINITIONS,
  SETTING_NAMES,
  type SettingContext,
  type SettingDefinition,
  type SettingName,
  type SettingValues,
} from './definitions.js';
import { defaultSettingValue, formatSettingValue, lookupSetting, parseSettingValue, settingBaseUnit } from './parse.js';

/** Where a value came from: its default, a line of a configuration file, or an override. */
export type SettingSource =
  | { kind: 'default' }
  | { kind: 'file'; file: string; line: number }
  | { kind: 'override'; origin: string };

/** One row of a listing (`walship show`, pg_settings). */
export interface SettingRow {
  name: SettingName;
  value: SettingValues[SettingName];
  /** As SHOW prints it. */
  text: string;
  /** The unit a bare number is read in, or null. */
  unit: string | null;
  context: SettingContext;
  source: SettingSource;
  description: string;
  secret: boolean;
}

const DEFAULT_SOURCE: SettingSource = { kind: 'default' };

export class Settings {
  private readonly values: ReadonlyMap<SettingName, SettingValues[SettingName]>;
  private readonly sources: ReadonlyMap<SettingName, SettingSource>;

  private constructor(
    values: ReadonlyMap<SettingName, SettingValues[SettingName]>,
    sources: ReadonlyMap<SettingName, SettingSource>,
  ) {
    this.values = values;
    this.sources = sources;
  }

  /** Every setting at its default. */
  static defaults(): Settings {
    const values = new Map<SettingName, SettingValues[SettingName]>();
    for (const name of SETTING_NAMES) values.set(name, defaultSettingValue(name));
    return new Settings(values, new Map());
  }

  /**
   * Settings from `name = text` pairs over the defaults (later pairs win). Throws the first
   * unknown name or invalid value.
   */
  static fromEntries(entries: Iterable<readonly [string, string]>, origin = 'entries'): Settings {
    let settings = Settings.defaults();
    for (const [name, text] of entries) settings = settings.with(name, text, { kind: 'override', origin });
    return settings;
  }

  /** The typed value: bytes for memory settings, milliseconds for durations. */
  get<N extends SettingName>(name: N): SettingValues[N] {
    const value = this.values.get(name);
    assert(value !== undefined, `setting ${name} has a value`);
    return value as SettingValues[N];
  }

  /** The value as SHOW prints it (`128MB`, `5min`, `on`). */
  text(name: SettingName): string {
    return formatSettingValue(name, this.get(name));
  }

  source(name: SettingName): SettingSource {
    return this.sources.get(name) ?? DEFAULT_SOURCE;
  }

  /** A copy with one setting read from text (validated); `name` is looked up ignoring case. */
  with(name: string, text: string, source: SettingSource = { kind: 'override', origin: 'with' }): Settings {
    const settingName = lookupSetting(name);
    const value = parseSettingValue(settingName, text);
    return this.withValue(settingName, value, source);
  }

  /** A copy with one setting set to an already typed value. */
  withValue<N extends SettingName>(name: N, value: SettingValues[N], source: SettingSource): Settings {
    const values = new Map(this.values);
    const sources = new Map(this.sources);
    values.set(name, value);
    sources.set(name, source);
    return new Settings(values, sources);
  }

  /** Every setting in table order, for listings. */
  rows(): SettingRow[] {
    return SETTING_NAMES.map((name) => {
      const definition: SettingDefinition = SETTING_DEFINITIONS[name];
      return {
        name,
        value: this.get(name),
        text: this.text(name),
        unit: settingBaseUnit(name),
        context: definition.context,
        source: this.source(name),
        description: definition.description,
        secret: 'secret' in definition && definition.secret === true,
      };
    });
  }
}

/** The settings whose values differ between two snapshots, with their contexts. */
export function changedSettings(before: Settings, after: Settings): Array<{ name: SettingName; context: SettingContext }> {
  const changed: Array<{ name: SettingName; context: SettingContext }> = [];
  for (const name of SETTING_NAMES) {
    if (before.get(name) !== after.get(name)) changed.push({ name, context: SETTING_DEFINITIONS[name].context });
  }
  return changed;
}
