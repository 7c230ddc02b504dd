/**
 * The palette commands. Each one asks the server through `ServerManager.executeCommand` and turns
 * the answer into a message; a server that is not running yields one clear message with a way to
 * restart, never an unhandled rejection.
 */
import { LogOutputChannel, QuickPickItem } from 'vscode';
import { SERVER_COMMANDS } from './constants';
import { formatRejected, NOTHING_TO_REJECT, RejectChoice, rejectChoices } from './reject';
import { ServerManager, ServerNotRunningError } from './server';
import { formatForgotten, formatStatusDetails, parseReportPath, parseServerStatus } from './status';
import {
    activeRustSelection,
    codeActionsAt,
    confirmModal,
    openMarkdown,
    showErrorMessage,
    showInformationMessage,
    showQuickPick,
} from './vscodeapi';

const RESTART = 'Restart Server';
const SHOW_OUTPUT = 'Show Output';

interface RejectItem extends QuickPickItem {
    readonly choice: RejectChoice;
}

export class Commands {
    constructor(
        private readonly server: ServerManager,
        private readonly channel: LogOutputChannel,
        private readonly afterChange: () => Promise<void>,
    ) {}

    /**
     * Shows the server's one sentence ("learning cycle started"). What the cycle did comes later as
     * the server's window/showMessage, which the language client shows by itself.
     */
    async learnNow(): Promise<void> {
        const result = await this.ask(SERVER_COMMANDS.learnNow);
        if (result !== undefined) {
            const message = typeof result === 'string' ? result : result === null ? 'learning started.' : JSON.stringify(result);
            void showInformationMessage(`Sleepy Coder: ${message}`);
            await this.afterChange();
        }
    }

    /**
     * Rejects an offer the user picks from those at the cursor: the same code actions the
     * lightbulb lists (so rust-analyzer's diagnostics count too), filtered to the server's reject
     * actions. Always a list, even of one, and a message when there is none: never a default.
     */
    async rejectFix(): Promise<void> {
        if (!this.server.isRunning) {
            await this.reportFailure(SERVER_COMMANDS.reject, new ServerNotRunningError());
            return;
        }
        const cursor = activeRustSelection();
        let choices: RejectChoice[] = [];
        if (cursor) {
            try {
                choices = rejectChoices(await codeActionsAt(cursor.uri, cursor.range));
            } catch (error) {
                this.channel.warn(`Asking for code actions at the cursor failed: ${String(error)}`);
            }
        }
        if (choices.length === 0) {
            void showInformationMessage(NOTHING_TO_REJECT);
            return;
        }
        const items: RejectItem[] = choices.map((choice) => ({ label: choice.label, choice }));
        const picked = await showQuickPick(items, 'Reject which fix? Sleepy Coder records it as wrong and learns from it.');
        if (!picked) {
            return;
        }
        const answer = await this.ask(SERVER_COMMANDS.reject, [picked.choice.offerId]);
        if (answer !== undefined) {
            void showInformationMessage(formatRejected(answer, picked.choice.label));
            await this.afterChange();
        }
    }

    async showStatus(): Promise<void> {
        const raw = await this.ask(SERVER_COMMANDS.status);
        if (raw === undefined) {
            return;
        }
        const status = parseServerStatus(raw);
        this.channel.debug(`Status (raw): ${JSON.stringify(raw)}`);
        if (!status) {
            void showErrorMessage('Sleepy Coder: the server sent a status it could not describe; see the output.');
            return;
        }
        // Plain text, as the server wrote it (its `summary` lines when present): the lines go to the
        // output as they are, and into one notification (which shows a single line) joined by " · ".
        const details = formatStatusDetails(status);
        this.channel.info(`Status:\n${details}`);
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
    private async ask(command: string, args: unknown[] = []): Promise<unknown> {
        try {
            return await this.server.executeCommand(command, args);
        } catch (error) {
            await this.reportFailure(command, error);
            return undefined;
        }
    }

    /** One error message saying why `command` failed (the server's own words for a JSON-RPC error). */
    private async reportFailure(command: string, error: unknown): Promise<void> {
        const reason = error instanceof Error ? error.message : String(error);
        const message = error instanceof ServerNotRunningError ? reason : `Sleepy Coder: ${command} failed: ${reason}`;
        this.channel.error(message);
        const choice = await showErrorMessage(message, RESTART, SHOW_OUTPUT);
        if (choice === RESTART) {
            await this.server.restart();
        } else if (choice === SHOW_OUTPUT) {
            this.channel.show(true);
        }
    }
}
