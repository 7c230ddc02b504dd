/**
 * Thin wrappers over the VS Code API: the only calls the extension makes into `vscode` outside
 * the client itself, gathered so the rest reads as plain functions and the API surface is visible
 * in one place.
 */
import {
    commands,
    ConfigurationChangeEvent,
    Disposable,
    extensions,
    LogOutputChannel,
    MessageItem,
    StatusBarAlignment,
    StatusBarItem,
    Uri,
    window,
    workspace,
    WorkspaceConfiguration,
} from 'vscode';

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
