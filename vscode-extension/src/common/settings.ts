/**
 * The `sleepyCoder.*` settings: reading and validating them, and turning them into what the server
 * receives (initializationOptions and workspace/didChangeConfiguration). Pure functions over a
 * `ConfigReader` (which `vscode.WorkspaceConfiguration` satisfies), so tests run without VS Code.
 *
 * Names are the server's own (learner/config.py accepts the camelCase spelling), so the mapping is
 * a filter and a validation, never a rename. One value is translated: publishDiagnostics is
 * "auto" / "on" / "off" in the editor and a boolean on the server (`resolvePublishDiagnostics`).
 */
import { CONFIG_SECTION } from './constants';
import { loadContributedSettings } from './setup';

/** What the server understands, as the server spells it in initializationOptions. */
export interface ServerSettings {
    model: string;
    device: string;
    backend: string;
    backendModel: string;
    backendTimeoutS: number;
    publishAdapters: boolean;
    maxNewTokens: number;
    attempts: number;
    candidates: number;
    backgroundFixes: boolean;
    modelEnabled: boolean;
    publishDiagnostics: boolean;
    learningEnabled: boolean;
    retentionDays: number;
    excludeGlobs: string[];
    editWindowS: number;
}

/**
 * `sleepyCoder.publishDiagnostics` in the editor. The server setting is a boolean; the editor adds
 * "auto" (the default) so that a user who also runs rust-analyzer sees one set of squiggles.
 */
export type PublishDiagnosticsMode = 'auto' | 'on' | 'off';

export const PUBLISH_DIAGNOSTICS_MODES: readonly PublishDiagnosticsMode[] = ['auto', 'on', 'off'];

/** Everything the extension reads: the server's settings (publishDiagnostics as a mode) plus the client-only ones. */
export interface ExtensionSettings extends Omit<ServerSettings, 'publishDiagnostics'> {
    /** Interpreter path; empty means "ask the Python extension, else python3". */
    python: string;
    publishDiagnostics: PublishDiagnosticsMode;
}

/** What the editor knows that the translation to server settings depends on. */
export interface EditorEnvironment {
    /** The rust-analyzer extension is installed and enabled (vscode.extensions.getExtension finds it). */
    readonly rustAnalyzerInstalled: boolean;
}

type Kind =
    | 'string'
    | 'boolean'
    | 'positiveInteger'
    | 'nonNegativeInteger'
    | 'positiveNumber'
    | 'stringArray'
    | 'publishDiagnosticsMode';

const KINDS: { readonly [K in keyof ExtensionSettings]: Kind } = {
    python: 'string',
    model: 'string',
    device: 'string',
    backend: 'string',
    backendModel: 'string',
    backendTimeoutS: 'positiveNumber',
    publishAdapters: 'boolean',
    maxNewTokens: 'positiveInteger',
    attempts: 'positiveInteger',
    candidates: 'positiveInteger',
    backgroundFixes: 'boolean',
    modelEnabled: 'boolean',
    publishDiagnostics: 'publishDiagnosticsMode',
    learningEnabled: 'boolean',
    retentionDays: 'nonNegativeInteger',
    excludeGlobs: 'stringArray',
    editWindowS: 'positiveNumber',
};

/** Settings that only the client uses; everything else is sent to the server. */
const CLIENT_ONLY: ReadonlySet<keyof ExtensionSettings> = new Set(['python']);

/** Settings whose change needs a new server process (the others are sent to the running one). */
const RESTART_ON_CHANGE: ReadonlySet<keyof ExtensionSettings> = new Set(['python']);

export const SETTING_KEYS = Object.keys(KINDS) as (keyof ExtensionSettings)[];
export const SERVER_SETTING_KEYS = SETTING_KEYS.filter((key) => !CLIENT_ONLY.has(key)) as (keyof ServerSettings &
    keyof ExtensionSettings)[];

/** The part of `vscode.WorkspaceConfiguration` that reading settings needs. */
export interface ConfigReader {
    get<T>(key: string): T | undefined;
}

export interface SettingsResult {
    readonly settings: ExtensionSettings;
    /** One human sentence per invalid value that was replaced by its default. */
    readonly problems: string[];
}

function describe(kind: Kind): string {
    switch (kind) {
        case 'string':
            return 'a string';
        case 'boolean':
            return 'true or false';
        case 'positiveInteger':
            return 'a whole number of at least 1';
        case 'nonNegativeInteger':
            return 'a whole number of at least 0';
        case 'positiveNumber':
            return 'a number greater than 0';
        case 'stringArray':
            return 'a list of strings';
        case 'publishDiagnosticsMode':
            return '"auto", "on" or "off"';
    }
}

function isValid(kind: Kind, value: unknown): boolean {
    switch (kind) {
        case 'string':
            return typeof value === 'string';
        case 'boolean':
            return typeof value === 'boolean';
        case 'positiveInteger':
            return Number.isInteger(value) && (value as number) >= 1;
        case 'nonNegativeInteger':
            return Number.isInteger(value) && (value as number) >= 0;
        case 'positiveNumber':
            return typeof value === 'number' && Number.isFinite(value) && value > 0;
        case 'stringArray':
            return Array.isArray(value) && value.every((item) => typeof item === 'string');
        case 'publishDiagnosticsMode':
            return (PUBLISH_DIAGNOSTICS_MODES as readonly unknown[]).includes(value);
    }
}

/**
 * Values from before a setting changed type, read as what they meant: publishDiagnostics was a
 * boolean, so a settings.json written then (`true` / `false`) keeps working as "on" / "off".
 */
function upgrade(kind: Kind, value: unknown): unknown {
    if (kind === 'publishDiagnosticsMode' && typeof value === 'boolean') {
        return value ? 'on' : 'off';
    }
    return value;
}

/**
 * The defaults declared in package.json `contributes.configuration`. Throws if the manifest lacks a
 * setting or declares an invalid default, so a manifest/code mismatch fails the unit tests.
 */
export function contributedDefaults(root?: string): ExtensionSettings {
    const contributed = loadContributedSettings(root);
    const defaults: Record<string, unknown> = {};
    for (const key of SETTING_KEYS) {
        const value = contributed.get(key)?.default;
        if (!isValid(KINDS[key], value)) {
            throw new Error(`package.json: ${CONFIG_SECTION}.${key} needs a default that is ${describe(KINDS[key])}`);
        }
        defaults[key] = value;
    }
    return defaults as unknown as ExtensionSettings;
}

/**
 * Reads every setting, replacing invalid values (a string in a number setting, a negative count)
 * by the default and saying so, instead of sending the server something it would reject.
 */
export function readSettings(config: ConfigReader, defaults: ExtensionSettings = contributedDefaults()): SettingsResult {
    const values: Record<string, unknown> = {};
    const problems: string[] = [];
    for (const key of SETTING_KEYS) {
        const raw = upgrade(KINDS[key], config.get<unknown>(key));
        if (raw === undefined || raw === null) {
            values[key] = defaults[key];
        } else if (isValid(KINDS[key], raw)) {
            values[key] = raw;
        } else {
            values[key] = defaults[key];
            problems.push(
                `${CONFIG_SECTION}.${key} must be ${describe(KINDS[key])}, not ${JSON.stringify(raw)}; ` +
                    `using ${JSON.stringify(defaults[key])}.`,
            );
        }
    }
    const settings = values as unknown as ExtensionSettings;
    settings.python = settings.python.trim();
    settings.excludeGlobs = [...settings.excludeGlobs];
    return { settings, problems };
}

/**
 * The server's boolean publishDiagnostics. "auto" is off when rust-analyzer is installed: it already
 * shows cargo's errors, and the server's code actions work on rust-analyzer's diagnostics too (it
 * matches them by error code and range), so the user gets one set of squiggles; without
 * rust-analyzer, "auto" is on, or there would be none.
 */
export function resolvePublishDiagnostics(mode: PublishDiagnosticsMode, environment: EditorEnvironment): boolean {
    switch (mode) {
        case 'on':
            return true;
        case 'off':
            return false;
        case 'auto':
            return !environment.rustAnalyzerInstalled;
    }
}

/** The initializationOptions object: the server's settings, flat, under their own names. */
export function toInitializationOptions(settings: ExtensionSettings, environment: EditorEnvironment): ServerSettings {
    const options: Record<string, unknown> = {};
    for (const key of SERVER_SETTING_KEYS) {
        const value = settings[key];
        options[key] = Array.isArray(value) ? [...value] : value;
    }
    options.publishDiagnostics = resolvePublishDiagnostics(settings.publishDiagnostics, environment);
    return options as unknown as ServerSettings;
}

/** workspace/didChangeConfiguration params: the same object under the `sleepyCoder` section. */
export function toDidChangeConfigurationParams(
    settings: ExtensionSettings,
    environment: EditorEnvironment,
): {
    settings: { [CONFIG_SECTION]: ServerSettings };
} {
    return { settings: { [CONFIG_SECTION]: toInitializationOptions(settings, environment) } };
}

/** `affectsConfiguration` of a configuration change event. */
export type AffectsConfiguration = (section: string) => boolean;

export type ConfigurationReaction = 'restart' | 'notify' | 'none';

/** What a settings change asks for: a new server process, a didChangeConfiguration, or nothing. */
export function reactionToChange(affects: AffectsConfiguration): ConfigurationReaction {
    if ([...RESTART_ON_CHANGE].some((key) => affects(`${CONFIG_SECTION}.${key}`))) {
        return 'restart';
    }
    if (SERVER_SETTING_KEYS.some((key) => affects(`${CONFIG_SECTION}.${key}`))) {
        return 'notify';
    }
    return 'none';
}
