/**
 * The status bar item: the model state (ready, loading, unavailable...), the learner when it is
 * busy, and how many routes have adapters (formatStatusBar in status.ts). Refreshed every minute,
 * when the server starts or stops, when a model fix starts or ends (the model may have just
 * loaded or failed), and when the server announces new adapters. A failed refresh shows the item
 * as off instead of raising, because the status bar must never nag.
 */
import { Disposable, StatusBarItem } from 'vscode';
import { EXTENSION_COMMANDS, SERVER_COMMANDS, STATUS_REFRESH_MS } from './constants';
import { ServerManager } from './server';
import { formatStatusBar, parseServerStatus, ServerStatus } from './status';
import { createStatusBarItem } from './vscodeapi';

export class StatusBar implements Disposable {
    private readonly item: StatusBarItem;
    private readonly timer: NodeJS.Timeout;
    private refreshing = false;

    constructor(private readonly server: ServerManager) {
        this.item = createStatusBarItem(EXTENSION_COMMANDS.showStatus);
        this.timer = setInterval(() => void this.refresh(), STATUS_REFRESH_MS);
        this.show(undefined);
    }

    /** Asks the server for its status; shows "off" when it is not running or does not answer. */
    async refresh(): Promise<void> {
        if (this.refreshing) {
            return;
        }
        this.refreshing = true;
        try {
            if (!this.server.isRunning) {
                this.show(undefined);
                return;
            }
            let status: ServerStatus | undefined;
            try {
                status = parseServerStatus(await this.server.executeCommand(SERVER_COMMANDS.status));
            } catch {
                status = undefined;
            }
            this.show(status);
        } finally {
            this.refreshing = false;
        }
    }

    private show(status: ServerStatus | undefined): void {
        const { text, tooltip } = formatStatusBar(status, this.server.isRunning);
        this.item.text = text;
        this.item.tooltip = tooltip;
        this.item.show();
    }

    dispose(): void {
        clearInterval(this.timer);
        this.item.dispose();
    }
}
