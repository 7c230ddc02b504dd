/**
 * Which Python runs the server. The decision is a pure function (`chooseInterpreter`); asking the
 * Python extension is done through a duck-typed view of its exported API, so this file needs no
 * `vscode` import and both parts are tested without VS Code. The caller (server.ts) hands in the
 * `ms-python.python` exports obtained through vscodeapi.ts.
 */
import * as os from 'os';
import * as path from 'path';
import { DEFAULT_PYTHON } from './constants';

export type InterpreterSource = 'setting' | 'python-extension' | 'default';

export interface InterpreterChoice {
    /** argv prefix: the interpreter and any arguments it needs before `-m module`. */
    readonly command: string[];
    readonly source: InterpreterSource;
}

export interface ChoiceContext {
    /** Folder substituted for `${workspaceFolder}` in the setting. */
    readonly workspaceFolder?: string;
    /** Home folder substituted for a leading `~`. */
    readonly home?: string;
}

function expandPath(value: string, context: ChoiceContext): string {
    let result = value;
    if (context.workspaceFolder !== undefined) {
        result = result.split('${workspaceFolder}').join(context.workspaceFolder);
    }
    const home = context.home ?? os.homedir();
    if (result === '~' || result.startsWith('~/') || result.startsWith('~\\')) {
        result = path.join(home, result.slice(1));
    }
    return result;
}

/**
 * The setting wins (the user said which Python has sleepy-coder installed); then the interpreter
 * selected in the Python extension (usually the project's venv); else `python3` from PATH.
 */
export function chooseInterpreter(
    configured: string,
    fromPythonExtension: readonly string[] | undefined,
    context: ChoiceContext = {},
): InterpreterChoice {
    const setting = configured.trim();
    if (setting) {
        return { command: [expandPath(setting, context)], source: 'setting' };
    }
    const selected = (fromPythonExtension ?? []).filter((part) => part.trim() !== '');
    if (selected.length > 0) {
        return { command: [...selected], source: 'python-extension' };
    }
    return { command: [DEFAULT_PYTHON], source: 'default' };
}

/** The parts of the `ms-python.python` exports we use; every member is optional because the API changed over time. */
export interface PythonExtensionApi {
    readonly ready?: Promise<void>;
    readonly environments?: EnvironmentsApi;
    /** Older spelling of `environments` in the extension's proposed API. */
    readonly environment?: EnvironmentsApi;
    readonly settings?: {
        getExecutionDetails?(resource?: unknown): { execCommand: string[] | undefined } | undefined;
    };
}

interface EnvironmentsApi {
    onDidChangeActiveEnvironmentPath?(listener: () => unknown): { dispose(): unknown };
    getActiveEnvironmentPath?(resource?: unknown): { id?: string; path: string } | undefined;
    resolveEnvironment?(
        environment: { id?: string; path: string } | string,
    ): Promise<{ executable?: { uri?: { fsPath: string } } } | undefined>;
}

/**
 * The interpreter the Python extension has selected for `resource`, or undefined when the
 * extension is missing, has no selection, or throws (we then fall back instead of failing).
 */
export async function interpreterFromPythonExtension(
    api: PythonExtensionApi | undefined,
    resource?: unknown,
): Promise<string[] | undefined> {
    if (!api) {
        return undefined;
    }
    try {
        await api.ready;
        const environments = api.environments ?? api.environment;
        const active = environments?.getActiveEnvironmentPath?.(resource);
        if (active?.path) {
            // The active path may name an environment folder; only resolving gives the executable,
            // so the raw path is used only by extension versions that cannot resolve.
            if (!environments?.resolveEnvironment) {
                return [active.path];
            }
            const executable = (await environments.resolveEnvironment(active))?.executable?.uri?.fsPath;
            if (executable) {
                return [executable];
            }
        }
        const execCommand = api.settings?.getExecutionDetails?.(resource)?.execCommand;
        return execCommand && execCommand.length > 0 ? [...execCommand] : undefined;
    } catch {
        return undefined;
    }
}

/**
 * Calls `listener` when the Python extension's selected interpreter changes; undefined when the
 * extension cannot tell us (then only our own setting triggers restarts).
 */
export function watchPythonExtension(
    api: PythonExtensionApi | undefined,
    listener: () => void,
): { dispose(): unknown } | undefined {
    const environments = api?.environments ?? api?.environment;
    return environments?.onDidChangeActiveEnvironmentPath?.(listener);
}
