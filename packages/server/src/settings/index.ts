/**
 * Settings: the table of settings with PostgreSQL's names, types, units and contexts, reading and
 * printing their values, and walship.conf (see README.md).
 */
export {
  SETTING_DEFINITIONS,
  SETTING_NAMES,
  isSettingName,
  settingDefinition,
  type BoolDefinition,
  type DurationDefinition,
  type EnumDefinition,
  type IntegerDefinition,
  type MemoryDefinition,
  type RealDefinition,
  type SettingCheck,
  type SettingContext,
  type SettingDefinition,
  type SettingKind,
  type SettingName,
  type SettingValues,
  type StringDefinition,
} from './definitions.js';
export {
  defaultSettingValue,
  formatSettingValue,
  lookupSetting,
  parseBoolText,
  parseSettingValue,
  settingBaseUnit,
  type ParseContext,
} from './parse.js';
export { Settings, changedSettings, type SettingRow, type SettingSource } from './settings.js';
export {
  CONFIG_FILE_NAME,
  configFilePath,
  formatConfigValue,
  parseConfigText,
  quoteConfigString,
  readConfigFile,
  resetConfigValue,
  setConfigValue,
  setConfigValues,
  settingsFromConfigText,
  unquoteConfigString,
  writeConfigFile,
  writeFileDurably,
  type ConfigChange,
  type ConfigLine,
  type WriteConfigOptions,
} from './config-file.js';
export { MEMORY_UNITS_HINT, TIME_UNITS_HINT, type MemoryUnit, type TimeUnit } from './units.js';
