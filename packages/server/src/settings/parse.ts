/**
 * Reading and printing setting values (guc.c's parse_and_validate_value, parse_bool, parse_int,
 * parse_real and _ShowOption), with PostgreSQL's error messages word for word, so that an operator
 * who knows one knows the other.
 *
 * Pure: no I/O. Errors are WalshipErrors with ErrorCode.invalidParameter or
 * ErrorCode.unknownSetting; a hint always says what would be accepted.
 */
import { ErrorCode, WalshipError } from '@walship/engine/errors';
import {
  isSettingName,
  SETTING_DEFINITIONS,
  SETTING_NAMES,
  type DurationDefinition,
  type EnumDefinition,
  type IntegerDefinition,
  type MemoryDefinition,
  type RealDefinition,
  type SettingDefinition,
  type SettingName,
  type SettingValues,
  type StringDefinition,
} from './definitions.js';
import {
  formatWithUnits,
  MEMORY_INPUT_UNITS,
  MEMORY_UNIT_BYTES,
  MEMORY_UNITS_HINT,
  parseWithUnits,
  TIME_INPUT_UNITS,
  TIME_UNIT_MS,
  TIME_UNITS_HINT,
} from './units.js';

/** Extra facts for an error, such as where in walship.conf the value came from. */
export interface ParseContext {
  detail?: string;
}

/**
 * Finds a setting by name, ignoring case as PostgreSQL does. Throws
 * `unrecognized configuration parameter "foo"` (ErrorCode.unknownSetting) for an unknown name.
 */
export function lookupSetting(name: string): SettingName {
  const lower = name.trim().toLowerCase();
  if (isSettingName(lower)) return lower;
  const suggestion = closestSettingName(lower);
  throw new WalshipError(ErrorCode.unknownSetting, `unrecognized configuration parameter "${name}"`, {
    hint:
      suggestion === null
        ? 'Run "walship show -D DIR" to list the settings.'
        : `Perhaps you meant "${suggestion}". Run "walship show -D DIR" to list the settings.`,
  });
}

/**
 * Reads `text` as a value of setting `name`, applying units, the range and the setting's checks.
 * Returns the typed value: boolean, enum string, string, or number (bytes for memory settings,
 * milliseconds for durations, microseconds for commit_delay).
 */
export function parseSettingValue<N extends SettingName>(name: N, text: string, context?: ParseContext): SettingValues[N];
export function parseSettingValue(name: string, text: string, context?: ParseContext): SettingValues[SettingName];
export function parseSettingValue(name: string, text: string, context: ParseContext = {}): SettingValues[SettingName] {
  const settingName = lookupSetting(name);
  const definition: SettingDefinition = SETTING_DEFINITIONS[settingName];
  switch (definition.kind) {
    case 'bool':
      return parseBoolSetting(settingName, text, context);
    case 'integer':
      return parseIntegerSetting(settingName, definition, text, context);
    case 'real':
      return parseRealSetting(settingName, definition, text, context);
    case 'memory':
      return parseMemorySetting(settingName, definition, text, context);
    case 'duration':
      return parseDurationSetting(settingName, definition, text, context);
    case 'string':
      return parseStringSetting(settingName, definition, text, context);
    case 'enum':
      return parseEnumSetting(settingName, definition, text, context) as SettingValues[SettingName];
  }
}

/**
 * Prints a typed value as SHOW does: `128MB`, `200ms`, `5min`, `on`, `0.9`, the enum's name, or
 * the string itself. A memory or time value prints in the largest unit in which it is whole; 0
 * and -1 print bare.
 */
export function formatSettingValue<N extends SettingName>(name: N, value: SettingValues[N]): string;
export function formatSettingValue(name: string, value: SettingValues[SettingName]): string;
export function formatSettingValue(name: string, value: SettingValues[SettingName]): string {
  const definition: SettingDefinition = SETTING_DEFINITIONS[lookupSetting(name)];
  switch (definition.kind) {
    case 'bool':
      return value === true ? 'on' : 'off';
    case 'integer':
    case 'real':
      return String(value);
    case 'memory':
      return formatWithUnits(value as number, MEMORY_INPUT_UNITS);
    case 'duration':
      return formatWithUnits(value as number, TIME_INPUT_UNITS);
    case 'string':
    case 'enum':
      return String(value);
  }
}

/** The default of a setting, typed. */
export function defaultSettingValue<N extends SettingName>(name: N): SettingValues[N];
export function defaultSettingValue(name: SettingName): SettingValues[SettingName];
export function defaultSettingValue(name: SettingName): SettingValues[SettingName] {
  const definition: SettingDefinition = SETTING_DEFINITIONS[name];
  switch (definition.kind) {
    case 'memory':
      return baseToBytes(definition, definition.default);
    case 'duration':
      return baseToMs(definition, definition.default);
    default:
      return definition.default as SettingValues[SettingName];
  }
}

/** The unit a bare number of this setting is read in (`8kB`, `MB`, `ms`, `s`, `us`), or null. */
export function settingBaseUnit(name: SettingName): string | null {
  const definition: SettingDefinition = SETTING_DEFINITIONS[name];
  if (definition.kind === 'memory' || definition.kind === 'duration') return definition.baseUnit;
  if (definition.kind === 'integer') return definition.unitLabel ?? null;
  return null;
}

function invalidValue(name: string, text: string, context: ParseContext, hint?: string, detail?: string): WalshipError {
  const details = [detail, context.detail].filter((part): part is string => part !== undefined);
  return new WalshipError(ErrorCode.invalidParameter, `invalid value for parameter "${name}": "${text}"`, {
    detail: details.length === 0 ? undefined : details.join(' '),
    hint,
  });
}

function outOfRange(
  name: string,
  value: number,
  min: number,
  max: number,
  unit: string | null,
  context: ParseContext,
): WalshipError {
  const suffix = unit === null ? '' : ` ${unit}`;
  return new WalshipError(
    ErrorCode.invalidParameter,
    `${value}${suffix} is outside the valid range for parameter "${name}" (${min}${suffix} .. ${max}${suffix})`,
    {
      detail: context.detail,
      hint: `Give a value between ${min}${suffix} and ${max}${suffix}.`,
    },
  );
}

/** parse_bool: on/off, true/false, yes/no, 1/0 and unique prefixes of them, in any case. */
export function parseBoolText(text: string): boolean | null {
  const value = text.toLowerCase();
  if (value.length === 0) return null;
  const isPrefixOf = (word: string, minLength: number) => value.length >= minLength && word.startsWith(value);
  if (isPrefixOf('true', 1) || isPrefixOf('yes', 1) || isPrefixOf('on', 2) || value === '1') return true;
  if (isPrefixOf('false', 1) || isPrefixOf('no', 1) || isPrefixOf('off', 2) || value === '0') return false;
  return null;
}

function parseBoolSetting(name: SettingName, text: string, context: ParseContext): boolean {
  const value = parseBoolText(text);
  if (value === null) {
    throw new WalshipError(ErrorCode.invalidParameter, `parameter "${name}" requires a Boolean value`, {
      detail: context.detail,
      hint: 'Use on or off (also true/false, yes/no, 1/0).',
    });
  }
  return value;
}

function parseIntegerSetting(name: SettingName, definition: IntegerDefinition, text: string, context: ParseContext): number {
  const parsed = parseWithUnits(text, null, 1, true);
  if (!parsed.ok) {
    const detail = parsed.reason === 'range' ? 'Value exceeds integer range.' : undefined;
    throw invalidValue(name, text, context, 'Give a whole number.', detail);
  }
  if (parsed.value < definition.min || parsed.value > definition.max) {
    throw outOfRange(name, parsed.value, definition.min, definition.max, definition.unitLabel ?? null, context);
  }
  return parsed.value;
}

function parseRealSetting(name: SettingName, definition: RealDefinition, text: string, context: ParseContext): number {
  const parsed = parseWithUnits(text, null, 1, false);
  if (!parsed.ok) {
    throw new WalshipError(ErrorCode.invalidParameter, `parameter "${name}" requires a numeric value`, {
      detail: context.detail,
      hint: `Give a number between ${definition.min} and ${definition.max}.`,
    });
  }
  if (parsed.value < definition.min || parsed.value > definition.max) {
    throw outOfRange(name, parsed.value, definition.min, definition.max, null, context);
  }
  return parsed.value;
}

function baseToBytes(definition: MemoryDefinition, base: number): number {
  // Negative values (-1) are special values ("automatic", "no limit"), not amounts.
  return base > 0 ? base * MEMORY_UNIT_BYTES[definition.baseUnit] : base;
}

function baseToMs(definition: DurationDefinition, base: number): number {
  return base > 0 ? base * TIME_UNIT_MS[definition.baseUnit] : base;
}

function parseMemorySetting(name: SettingName, definition: MemoryDefinition, text: string, context: ParseContext): number {
  const parsed = parseWithUnits(text, MEMORY_INPUT_UNITS, MEMORY_UNIT_BYTES[definition.baseUnit], true);
  if (!parsed.ok) {
    const detail = parsed.reason === 'range' ? 'Value exceeds integer range.' : undefined;
    throw invalidValue(name, text, context, MEMORY_UNITS_HINT, detail);
  }
  if (parsed.value < definition.min || parsed.value > definition.max) {
    throw outOfRange(name, parsed.value, definition.min, definition.max, definition.baseUnit, context);
  }
  const bytes = baseToBytes(definition, parsed.value);
  const problem = definition.check?.(bytes) ?? null;
  if (problem !== null) throw invalidValue(name, text, context, problem.hint, problem.detail);
  return bytes;
}

function parseDurationSetting(name: SettingName, definition: DurationDefinition, text: string, context: ParseContext): number {
  const parsed = parseWithUnits(text, TIME_INPUT_UNITS, TIME_UNIT_MS[definition.baseUnit], true);
  if (!parsed.ok) {
    const detail = parsed.reason === 'range' ? 'Value exceeds integer range.' : undefined;
    throw invalidValue(name, text, context, TIME_UNITS_HINT, detail);
  }
  if (parsed.value < definition.min || parsed.value > definition.max) {
    throw outOfRange(name, parsed.value, definition.min, definition.max, definition.baseUnit, context);
  }
  return baseToMs(definition, parsed.value);
}

function parseStringSetting(name: SettingName, definition: StringDefinition, text: string, context: ParseContext): string {
  const problem = definition.check?.(text) ?? null;
  if (problem !== null) throw invalidValue(name, text, context, problem.hint, problem.detail);
  return text;
}

function parseEnumSetting(name: SettingName, definition: EnumDefinition, text: string, context: ParseContext): string {
  const lower = text.toLowerCase();
  const value = definition.values.find((candidate) => candidate === lower) ?? definition.aliases?.[lower];
  if (value === undefined) {
    throw invalidValue(name, text, context, `Available values: ${definition.values.join(', ')}.`);
  }
  return value;
}

/** Levenshtein distance, bounded: names are short, so the plain table is fine. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** The known name closest to a misspelt one, when it is close enough to be a likely typo. */
function closestSettingName(name: string): string | null {
  if (name.length === 0) return null;
  let best: string | null = null;
  let bestDistance = Math.max(2, Math.floor(name.length / 4)) + 1;
  for (const candidate of SETTING_NAMES) {
    const distance = editDistance(name, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}
