/**
 * Entry point. Only wiring: the log channel, the server manager, the status bar, the commands,
 * the configuration and extension listeners, and a deferred first start so activation returns at once.
 */
import * as vscode from 'vscode';
import { Commands } from './common/commands';
import { EXTENSION_COMMANDS, CONFIG_SECTION } from './common/constants';
import { PythonExtensionApi, watchPythonExtension } from './common/python';
import { reactionToChange } from './common/settings';
import { ServerManager } from './common/server';
import { loadServerInfo } from './common/setup';
import { formatAdaptersChanged, parseAdaptersChanged } from './common/status';
import { StatusBar } from './common/statusBar';
import {
    createOutputChannel,
    executeCommand,
    getConfiguration,
    getExtensionExports,
    onDidChangeConfiguration,
    onDidChangeExtensions,
    registerCommand,
    showErrorMessage,
    showInformationMessage,
    showWarningMessage,
} from './common/vscodeapi';

let server: ServerManager | undefined;

export function activate(context: vscode.ExtensionContext): void {
    const info = loadServerInfo();
    const channel = createOutputChannel(info.name);
    context.subscriptions.push(channel);
    channel.info(`${info.name}: server module ${info.module}`);

    // The status bar is created below; callbacks only run after the deferred start.
    const refreshStatus = async (): Promise<void> => {
        await statusBar.refresh();
    };

    const manager = new ServerManager(info, channel, {
        onRunningChanged: () => void refreshStatus(),
        onAdaptersChanged: (params) => {
            void showInformationMessage(formatAdaptersChanged(parseAdaptersChanged(params)));
            void refreshStatus();
        },
        onProgressChanged: () => void refreshStatus(),
        onSettingsProblems: (problems) => void showWarningMessage(`Sleepy Coder settings: ${problems.join(' ')}`),
        onStartFailed: (commandLine) => {
            void showErrorMessage(
                `Sleepy Coder could not start its server (${commandLine}). Install sleepy-coder into that Python ` +
                    `or set "${CONFIG_SECTION}.python".`,
                'Open Settings',
            ).then((choice) => {
                if (choice) {
                    void executeCommand('workbench.action.openSettings', `${CONFIG_SECTION}.python`);
                }
            });
        },
    });
    server = manager;
    const statusBar = new StatusBar(manager);
    context.subscriptions.push(manager, statusBar);

    const commands = new Commands(manager, channel, refreshStatus);
    let rustAnalyzerInstalled = manager.editorEnvironment().rustAnalyzerInstalled;
    const restart = async (): Promise<void> => {
        await manager.restart().catch((error: unknown) => {
            channel.error(`Restart failed: ${String(error)}`);
        });
    };
    context.subscriptions.push(
        registerCommand(EXTENSION_COMMANDS.restart, restart),
        registerCommand(EXTENSION_COMMANDS.learnNow, () => commands.learnNow()),
        registerCommand(EXTENSION_COMMANDS.showStatus, () => commands.showStatus()),
        registerCommand(EXTENSION_COMMANDS.openReport, () => commands.openReport()),
        registerCommand(EXTENSION_COMMANDS.forgetData, () => commands.forgetData()),
        registerCommand(EXTENSION_COMMANDS.rejectFix, () => commands.rejectFix()),
        onDidChangeConfiguration(async (event) => {
            const reaction = reactionToChange((section) => event.affectsConfiguration(section));
            if (reaction === 'restart') {
                await restart();
            } else if (reaction === 'notify') {
                await manager.sendSettings();
            }
        }),
        // publishDiagnostics "auto" depends on whether rust-analyzer is installed; tell the server
        // when that changes, and only then (any extension install fires this event).
        onDidChangeExtensions(async () => {
            const installed = manager.editorEnvironment().rustAnalyzerInstalled;
            if (installed !== rustAnalyzerInstalled) {
                rustAnalyzerInstalled = installed;
                await manager.sendSettings();
            }
        }),
    );

    // Deferred so that activation (and with it the editor) never waits for Python to start.
    setImmediate(() => {
        void restart();
        void getExtensionExports<PythonExtensionApi>('ms-python.python')
            .then((api) => {
                // A newly selected interpreter matters only when our own setting does not name one.
                const watcher = watchPythonExtension(api, () => {
                    if (!getConfiguration(CONFIG_SECTION).get<string>('python', '').trim()) {
                        void restart();
                    }
                });
                if (watcher) {
                    context.subscriptions.push({ dispose: () => void watcher.dispose() });
                }
            })
            .catch(() => undefined);
    });
}

export async function deactivate(): Promise<void> {
    await server?.stop();
    server = undefined;
}
