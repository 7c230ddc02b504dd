/**
 * Reads what package.json declares once: the server identity (`serverInfo`) and the defaults of the
 * contributed settings. Code reads them from here instead of repeating them, so the manifest stays
 * the single source of truth. No `vscode` import: tests load it directly.
 */
import * as fs from 'fs';
import * as path from 'path';
import { CONFIG_SECTION, EXTENSION_ROOT_DIR } from './constants';

export interface ServerInfo {
    /** Human name, used for the output channel and the language client. */
    readonly name: string;
    /** Python module started with `python -m`. */
    readonly module: string;
}

/** Raised when package.json lacks what the extension needs; the message says what to fix. */
export class ManifestError extends Error {
    constructor(message: string) {
        super(message);
        this.name = 'ManifestError';
    }
}

interface ContributedProperty {
    readonly default?: unknown;
    readonly type?: string | string[];
}

function readManifest(root: string): Record<string, unknown> {
    const file = path.join(root, 'package.json');
    try {
        return JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
    } catch (error) {
        throw new ManifestError(`Cannot read ${file}: ${String(error)}`);
    }
}

export function loadServerInfo(root: string = EXTENSION_ROOT_DIR): ServerInfo {
    const info = readManifest(root).serverInfo as Partial<ServerInfo> | undefined;
    if (!info || typeof info.name !== 'string' || typeof info.module !== 'string' || !info.module) {
        throw new ManifestError('package.json must declare "serverInfo": {"name": string, "module": string}');
    }
    return { name: info.name, module: info.module };
}

/**
 * The contributed `sleepyCoder.*` settings, keyed without the section prefix
 * (`maxNewTokens`, `trace.server`), with their declared type and default.
 */
export function loadContributedSettings(root: string = EXTENSION_ROOT_DIR): Map<string, ContributedProperty> {
    const contributes = readManifest(root).contributes as
        | { configuration?: { properties?: Record<string, ContributedProperty> } }
        | undefined;
    const properties = contributes?.configuration?.properties ?? {};
    const prefix = `${CONFIG_SECTION}.`;
    const result = new Map<string, ContributedProperty>();
    for (const [key, property] of Object.entries(properties)) {
        if (key.startsWith(prefix)) {
            result.set(key.slice(prefix.length), property);
        }
    }
    return result;
}
