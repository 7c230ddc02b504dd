/**
 * The palette commands. Each one asks the server through `ServerManager.executeCommand` and turns
 * the answer into a message; a server that is not running yields one clear message with a way to
 * restart, never an unhandled rejection.
 */
import { LogOutputChannel } from 'vscode';
import { SERVER_COMMANDS } from './constants';
import { ServerManager, ServerNotRunningError } from './server';
import { formatForgotten, formatStatusDetails, parseReportPath, parseServerStatus } from './status';
import { confirmModal, openMarkdown, showErrorMessage, showInformationMessage } from './vscodeapi';

const RESTART = 'Restart Server';
const SHOW_OUTPUT = 'Show Output';

export class Commands {
    constructor(
        private readonly server: ServerManager,
        private readonly channel: LogOutputChannel,
        private readonly afterChange: () => Promise<void>,
    ) {}

    async learnNow(): Promise<void> {
        const result = await this.ask(SERVER_COMMANDS.learnNow);
        if (result !== undefined) {
            const message = typeof result === 'string' ? result : result === null ? 'learning started.' : JSON.stringify(result);
            void showInformationMessage(`Sleepy Coder: ${message}`);
            await this.afterChange();
        }
    }

    async showStatus(): Promise<void> {
        const raw = await this.ask(SERVER_COMMANDS.status);
        if (raw === undefined) {
            return;
        }
        const status = parseServerStatus(raw);
        this.channel.info(`Status: ${JSON.stringify(raw, null, 2)}`);
        if (!status) {
            void showErrorMessage('Sleepy Coder: the server sent a status it could not describe; see the output.');
            return;
        }
        const details = formatStatusDetails(status);
        const choice = await showInformationMessage(details.split('\n').join(' · '), SHOW_OUTPUT);
        if (choice === SHOW_OUTPUT) {
            this.channel.show(true);
        }
    }

    async openReport(): Promise<void> {
        const result = await this.ask(SERVER_COMMANDS.openReport);
        if (result === undefined) {
            return;
        }
        const file = parseReportPath(result);
        if (file) {
            await openMarkdown(file);
        } else {
            void showInformationMessage('Sleepy Coder has no report yet: it writes one after its first learning cycle.');
        }
    }

    async forgetData(): Promise<void> {
        const confirmed = await confirmModal(
            'Forget all Sleepy Coder data?',
            'This deletes every recorded fix outcome and the training data derived from them. It cannot be undone.',
            'Forget My Data',
        );
        if (!confirmed) {
            return;
        }
        const result = await this.ask(SERVER_COMMANDS.forgetData);
        if (result !== undefined) {
            void showInformationMessage(formatForgotten(result));
            await this.afterChange();
        }
    }

    /**
     * Runs a server command; on failure shows why and returns undefined. A null answer is a
     * valid answer (openReport without a report) and is returned as null.
     */
    private async ask(command: string): Promise<unknown> {
        try {
            return await this.server.executeCommand(command);
        } catch (error) {
            const message = error instanceof ServerNotRunningError ? error.message : `Sleepy Coder: ${command} failed: ${String(error)}`;
            this.channel.error(message);
            const choice = await showErrorMessage(message, RESTART, SHOW_OUTPUT);
            if (choice === RESTART) {
                await this.server.restart();
            } else if (choice === SHOW_OUTPUT) {
                this.channel.show(true);
            }
            return undefined;
        }
    }
}
