/**
 * The server's command line and environment, as plain data. Kept apart from server.ts (which needs
 * `vscode-languageclient` and therefore `vscode`) so the exact process we start is unit-tested.
 */

export interface ServerLaunch {
    readonly command: string;
    readonly args: string[];
    readonly options: { readonly cwd: string; readonly env: Record<string, string | undefined> };
}

/**
 * `<interpreter...> -m <module>` in `cwd`, with the editor's environment plus two Python switches:
 * unbuffered output so the server's stderr log reaches the output channel as it is written, and
 * UTF-8 I/O so source text with non-ASCII characters survives on Windows code pages.
 */
export function buildServerLaunch(
    interpreter: readonly string[],
    module: string,
    cwd: string,
    baseEnv: Readonly<Record<string, string | undefined>>,
): ServerLaunch {
    if (interpreter.length === 0 || !interpreter[0]) {
        throw new Error('No Python interpreter to start the server with.');
    }
    const env: Record<string, string | undefined> = { ...baseEnv, PYTHONUNBUFFERED: '1', PYTHONUTF8: '1' };
    return {
        command: interpreter[0],
        args: [...interpreter.slice(1), '-m', module],
        options: { cwd, env },
    };
}

/** One line for the log, quoting arguments with spaces so it can be pasted into a shell. */
export function describeLaunch(launch: ServerLaunch): string {
    return [launch.command, ...launch.args].map((part) => (/\s/.test(part) ? JSON.stringify(part) : part)).join(' ');
}
