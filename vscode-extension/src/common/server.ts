/**
 * Owns the language client's lifecycle: resolves the interpreter, builds the command line, the
 * environment and the initializationOptions, starts the client, and on restart stops the old one
 * before starting the new one. Everything else talks to the server through this class.
 */
import { Disposable, LogOutputChannel } from 'vscode';
import {
    DidChangeConfigurationNotification,
    ExecuteCommandRequest,
    LanguageClient,
    LanguageClientOptions,
    RevealOutputChannelOn,
    ServerOptions,
    State,
} from 'vscode-languageclient/node';
import { ADAPTERS_CHANGED_NOTIFICATION, CONFIG_SECTION } from './constants';
import { buildServerLaunch, describeLaunch } from './launch';
import { chooseInterpreter, InterpreterChoice, interpreterFromPythonExtension, PythonExtensionApi } from './python';
import { readSettings, SettingsResult, toDidChangeConfigurationParams, toInitializationOptions } from './settings';
import { ServerInfo } from './setup';
import { getConfiguration, getExtensionExports, getProjectRoot } from './vscodeapi';

/** Raised by `executeCommand` when there is no running server to ask. */
export class ServerNotRunningError extends Error {
    constructor() {
        super('The Sleepy Coder server is not running. See the "Sleepy Coder" output, or run "Sleepy Coder: Restart Server".');
        this.name = 'ServerNotRunningError';
    }
}

export interface ServerEvents {
    /** The client's state changed (running or not). */
    onRunningChanged(running: boolean): void;
    /** The server sent `sleepy-coder/adaptersChanged`. */
    onAdaptersChanged(params: unknown): void;
    /** Some settings were invalid and replaced by defaults; one sentence each. */
    onSettingsProblems(problems: string[]): void;
    /** The server process could not be started; `launch` is the command line we tried. */
    onStartFailed(launch: string, error: unknown): void;
}

export class ServerManager implements Disposable {
    private client: LanguageClient | undefined;
    private subscriptions: Disposable[] = [];
    /** Restarts run one after another, so two quick setting changes never leave two servers. */
    private queue: Promise<void> = Promise.resolve();

    constructor(
        private readonly info: ServerInfo,
        private readonly channel: LogOutputChannel,
        private readonly events: ServerEvents,
    ) {}

    get isRunning(): boolean {
        return this.client?.state === State.Running;
    }

    /** Stop the current server (if any), then start one with the current settings. */
    restart(): Promise<void> {
        const next = this.queue.then(() => this.stopAndStart());
        this.queue = next.catch(() => undefined);
        return next;
    }

    /** Sends the current settings to the running server (for changes that need no restart). */
    async sendSettings(): Promise<void> {
        if (!this.client || !this.isRunning) {
            return;
        }
        const { settings, problems } = this.currentSettings();
        this.reportProblems(problems);
        await this.client.sendNotification(DidChangeConfigurationNotification.type, toDidChangeConfigurationParams(settings));
    }

    /** Runs a server command (workspace/executeCommand) and returns its result. */
    async executeCommand(command: string, args: unknown[] = []): Promise<unknown> {
        if (!this.client || !this.isRunning) {
            throw new ServerNotRunningError();
        }
        return this.client.sendRequest(ExecuteCommandRequest.type, { command, arguments: args });
    }

    async stop(): Promise<void> {
        const client = this.client;
        this.client = undefined;
        this.subscriptions.forEach((d) => {
            d.dispose();
        });
        this.subscriptions = [];
        if (client) {
            this.channel.info('Stopping the server.');
            try {
                await client.stop();
            } catch (error) {
                this.channel.warn(`The server did not stop cleanly: ${String(error)}`);
            }
        }
        this.events.onRunningChanged(false);
    }

    dispose(): void {
        void this.stop();
    }

    private currentSettings(): SettingsResult {
        return readSettings(getConfiguration(CONFIG_SECTION, getProjectRoot()));
    }

    private reportProblems(problems: string[]): void {
        if (problems.length > 0) {
            problems.forEach((problem) => {
                this.channel.warn(problem);
            });
            this.events.onSettingsProblems(problems);
        }
    }

    private async resolveInterpreter(configured: string): Promise<InterpreterChoice> {
        const root = getProjectRoot();
        let fromExtension: string[] | undefined;
        if (!configured) {
            const api = await getExtensionExports<PythonExtensionApi>('ms-python.python').catch(() => undefined);
            fromExtension = await interpreterFromPythonExtension(api, root);
        }
        return chooseInterpreter(configured, fromExtension, { workspaceFolder: root?.fsPath });
    }

    private async stopAndStart(): Promise<void> {
        await this.stop();
        const { settings, problems } = this.currentSettings();
        this.reportProblems(problems);
        const interpreter = await this.resolveInterpreter(settings.python);
        const cwd = getProjectRoot()?.fsPath ?? process.cwd();
        const launch = buildServerLaunch(interpreter.command, this.info.module, cwd, process.env);
        const commandLine = describeLaunch(launch);
        this.channel.info(`Interpreter from ${interpreter.source}; starting: ${commandLine} (in ${cwd})`);

        const serverOptions: ServerOptions = { run: launch, debug: launch };
        const clientOptions: LanguageClientOptions = {
            documentSelector: [{ scheme: 'file', language: 'rust' }],
            outputChannel: this.channel,
            traceOutputChannel: this.channel,
            revealOutputChannelOn: RevealOutputChannelOn.Never,
            initializationOptions: toInitializationOptions(settings),
        };
        const client = new LanguageClient(CONFIG_SECTION, this.info.name, serverOptions, clientOptions);
        this.subscriptions.push(
            client.onDidChangeState((event) => {
                this.events.onRunningChanged(event.newState === State.Running);
            }),
            client.onNotification(ADAPTERS_CHANGED_NOTIFICATION, (params: unknown) => {
                this.events.onAdaptersChanged(params);
            }),
        );
        this.client = client;
        try {
            await client.start();
            this.channel.info('Server started.');
        } catch (error) {
            this.channel.error(`Could not start the server with ${commandLine}: ${String(error)}`);
            this.events.onStartFailed(commandLine, error);
        }
    }
}
