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
    WorkDoneProgressCancelNotification,
} from 'vscode-languageclient/node';
import { ADAPTERS_CHANGED_NOTIFICATION, CONFIG_SECTION, RUST_ANALYZER_EXTENSION_ID } from './constants';
import { buildServerLaunch, describeLaunch } from './launch';
import { CancellableProgress } from './progress';
import { chooseInterpreter, InterpreterChoice, interpreterFromPythonExtension, PythonExtensionApi } from './python';
import {
    EditorEnvironment,
    PublishDiagnosticsMode,
    readSettings,
    resolvePublishDiagnostics,
    SettingsResult,
    toDidChangeConfigurationParams,
    toInitializationOptions,
} from './settings';
import { ServerInfo } from './setup';
import {
    getConfiguration,
    getExtensionExports,
    getProjectRoot,
    isExtensionInstalled,
    openNotificationProgress,
} from './vscodeapi';

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
    /** A cancellable server progress (a model fix) started or ended. */
    onProgressChanged(): void;
}

export class ServerManager implements Disposable {
    private client: LanguageClient | undefined;
    private progress: CancellableProgress | undefined;
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
        const environment = this.editorEnvironment();
        this.logPublishDiagnostics(settings.publishDiagnostics, environment);
        await this.client.sendNotification(
            DidChangeConfigurationNotification.type,
            toDidChangeConfigurationParams(settings, environment),
        );
    }

    /** What the settings translation depends on, read now (rust-analyzer may be installed at any time). */
    editorEnvironment(): EditorEnvironment {
        return { rustAnalyzerInstalled: isExtensionInstalled(RUST_ANALYZER_EXTENSION_ID) };
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
        // A stopped server sends no `end`; its notifications must not stay on screen.
        this.progress?.closeAll();
        this.progress = undefined;
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

    /** Says in the log what "auto" chose, since the user never sees the boolean the server gets. */
    private logPublishDiagnostics(mode: PublishDiagnosticsMode, environment: EditorEnvironment): void {
        if (mode === 'auto') {
            const on = resolvePublishDiagnostics('auto', environment);
            this.channel.info(
                on
                    ? 'publishDiagnostics "auto": rust-analyzer is not installed, so the server publishes its own diagnostics.'
                    : "publishDiagnostics \"auto\": rust-analyzer is installed, so its diagnostics are shown and the server's are not (fixes are offered on rust-analyzer's).",
            );
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

        const environment = this.editorEnvironment();
        this.logPublishDiagnostics(settings.publishDiagnostics, environment);

        // Cancellable progress (model fixes) as a notification with Cancel; see progress.ts for
        // why the language client's own (a status-bar entry) is not enough. Stopping closes these
        // notifications, so a Cancel always reaches the client that showed it.
        const progress = new CancellableProgress(
            openNotificationProgress,
            (token) => {
                void this.client?.sendNotification(WorkDoneProgressCancelNotification.type, { token }).catch((error: unknown) => {
                    this.channel.warn(`Could not cancel ${String(token)}: ${String(error)}`);
                });
            },
            () => this.events.onProgressChanged(),
        );
        const serverOptions: ServerOptions = { run: launch, debug: launch };
        const clientOptions: LanguageClientOptions = {
            documentSelector: [{ scheme: 'file', language: 'rust' }],
            outputChannel: this.channel,
            traceOutputChannel: this.channel,
            revealOutputChannelOn: RevealOutputChannelOn.Never,
            initializationOptions: toInitializationOptions(settings, environment),
            middleware: {
                handleWorkDoneProgress: (token, params, next) => {
                    progress.handle(token, params, () => next(token, params));
                },
            },
        };
        const client = new LanguageClient(CONFIG_SECTION, this.info.name, serverOptions, clientOptions);
        this.progress = progress;
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
