/**
 * Thin wrappers over the VS Code API: the only calls the extension makes into `vscode` outside
 * the client itself, gathered so the rest reads as plain functions and the API surface is visible
 * in one place.
 */
import {
    CodeAction,
    Command,
    commands,
    ConfigurationChangeEvent,
    Disposable,
    extensions,
    LogOutputChannel,
    MessageItem,
    Progress,
    ProgressLocation,
    QuickPickItem,
    Range,
    StatusBarAlignment,
    StatusBarItem,
    Uri,
    window,
    workspace,
    WorkspaceConfiguration,
} from 'vscode';
import { ProgressView } from './progress';

export function createOutputChannel(name: string): LogOutputChannel {
    return window.createOutputChannel(name, { log: true });
}

export function getConfiguration(section: string, scope?: Uri): WorkspaceConfiguration {
    return workspace.getConfiguration(section, scope);
}

export function onDidChangeConfiguration(listener: (event: ConfigurationChangeEvent) => unknown): Disposable {
    return workspace.onDidChangeConfiguration(listener);
}

export function registerCommand(command: string, callback: (...args: unknown[]) => unknown): Disposable {
    return commands.registerCommand(command, callback);
}

export function executeCommand<T>(command: string, ...rest: unknown[]): Thenable<T | undefined> {
    return commands.executeCommand<T>(command, ...rest);
}

/** The first workspace folder: the server's working directory and the settings scope. */
export function getProjectRoot(): Uri | undefined {
    return workspace.workspaceFolders?.[0]?.uri;
}

export function createStatusBarItem(command: string): StatusBarItem {
    const item = window.createStatusBarItem(StatusBarAlignment.Left, 10);
    item.command = command;
    return item;
}

export function showInformationMessage(message: string, ...items: string[]): Thenable<string | undefined> {
    return window.showInformationMessage(message, ...items);
}

export function showWarningMessage(message: string, ...items: string[]): Thenable<string | undefined> {
    return window.showWarningMessage(message, ...items);
}

export function showErrorMessage(message: string, ...items: string[]): Thenable<string | undefined> {
    return window.showErrorMessage(message, ...items);
}

/** A modal yes/no question; resolves true only when the user picks `confirm`. */
export async function confirmModal(message: string, detail: string, confirm: string): Promise<boolean> {
    const choice: MessageItem | undefined = await window.showWarningMessage(
        message,
        { modal: true, detail },
        { title: confirm },
    );
    return choice?.title === confirm;
}

/** Opens a Markdown file rendered, falling back to the plain text editor. */
export async function openMarkdown(file: string): Promise<void> {
    const uri = Uri.file(file);
    try {
        await commands.executeCommand('markdown.showPreview', uri);
    } catch {
        await window.showTextDocument(uri);
    }
}

/** The exports of another extension, activating it first; undefined when it is not installed. */
export async function getExtensionExports<T>(id: string): Promise<T | undefined> {
    const extension = extensions.getExtension<T>(id);
    if (!extension) {
        return undefined;
    }
    return extension.isActive ? extension.exports : await extension.activate();
}

/** Whether another extension is installed and enabled (getExtension does not list disabled ones). */
export function isExtensionInstalled(id: string): boolean {
    return extensions.getExtension(id) !== undefined;
}

/** Fires when extensions are installed, removed, enabled or disabled. */
export function onDidChangeExtensions(listener: () => unknown): Disposable {
    return extensions.onDidChange(listener);
}

/**
 * A progress notification with a Cancel button (see progress.ts for why not the language client's
 * own). Reports that arrive before VS Code hands us the progress object are kept, and an `end`
 * that comes first makes the task finish at once, so no notification is left behind.
 */
export function openNotificationProgress(title: string, onCancel: () => void): ProgressView {
    let progress: Progress<{ message?: string; increment?: number }> | undefined;
    let pending: { message?: string; increment?: number }[] = [];
    let finish: (() => void) | undefined;
    let ended = false;
    void window.withProgress({ location: ProgressLocation.Notification, title, cancellable: true }, (shown, token) => {
        if (ended) {
            return Promise.resolve();
        }
        progress = shown;
        pending.forEach((update) => {
            shown.report(update);
        });
        pending = [];
        const cancelled = token.onCancellationRequested(() => {
            if (!ended) {
                onCancel();
            }
        });
        return new Promise<void>((resolve) => {
            finish = () => {
                cancelled.dispose();
                resolve();
            };
        });
    });
    return {
        report(update) {
            if (progress) {
                progress.report(update);
            } else {
                pending.push(update);
            }
        },
        end() {
            ended = true;
            finish?.();
        },
    };
}

/** The active editor's document and selection when it is a Rust file, else undefined. */
export function activeRustSelection(): { uri: Uri; range: Range } | undefined {
    const editor = window.activeTextEditor;
    if (!editor || editor.document.languageId !== 'rust') {
        return undefined;
    }
    return { uri: editor.document.uri, range: editor.selection };
}

/**
 * The code actions every provider offers at `range` (what the lightbulb would list), unresolved:
 * VS Code passes the diagnostics there (ours or rust-analyzer's) to each provider as context.
 */
export async function codeActionsAt(uri: Uri, range: Range): Promise<(CodeAction | Command)[]> {
    return (await commands.executeCommand<(CodeAction | Command)[] | undefined>('vscode.executeCodeActionProvider', uri, range)) ?? [];
}

export function showQuickPick<T extends QuickPickItem>(items: T[], placeHolder: string): Thenable<T | undefined> {
    return window.showQuickPick(items, { placeHolder, ignoreFocusOut: false });
}
