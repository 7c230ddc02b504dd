/**
 * Cancellable server progress (a model fix) as a notification with a Cancel button.
 *
 * Why this exists: vscode-languageclient 9.0.1 shows every server work-done progress with
 * `ProgressLocation.Window` (node_modules/vscode-languageclient/lib/common/progressPart.js, line 39,
 * in `ProgressPart.begin`), i.e. a small status-bar entry, and passes `cancellable` along; VS Code
 * only draws a Cancel button for `ProgressLocation.Notification`. So a model fix that takes minutes
 * would be nearly invisible and impossible to cancel. The language client's
 * `middleware.handleWorkDoneProgress` sees every begin/report/end first; this class takes the
 * cancellable ones and shows them through `OpenProgress` (a notification, see vscodeapi.ts), and
 * Cancel sends `window/workDoneProgress/cancel` with the token. Progress that is not cancellable
 * (nothing to offer the user but a status line) is left to the client as before.
 *
 * No `vscode` import: the types are structural copies of the LSP ones, so tests run in plain Node.
 */

export type ProgressToken = string | number;

/** `$/progress` values (LSP WorkDoneProgressBegin / Report / End), as far as they are used here. */
export type WorkDoneProgressValue =
    | { kind: 'begin'; title: string; cancellable?: boolean; message?: string; percentage?: number }
    | { kind: 'report'; cancellable?: boolean; message?: string; percentage?: number }
    | { kind: 'end'; message?: string };

/** One visible progress: `report` adds to it, `end` removes it. */
export interface ProgressView {
    report(update: { message?: string; increment?: number }): void;
    end(): void;
}

/** Shows a progress titled `title` with a Cancel button that calls `onCancel`. */
export type OpenProgress = (title: string, onCancel: () => void) => ProgressView;

interface Shown {
    readonly view: ProgressView;
    /** Percentage reported so far; VS Code's progress takes increments, LSP sends totals. */
    reported: number;
}

export class CancellableProgress {
    private readonly shown = new Map<ProgressToken, Shown>();

    constructor(
        private readonly open: OpenProgress,
        /** Sends `window/workDoneProgress/cancel` for `token`. */
        private readonly sendCancel: (token: ProgressToken) => void,
        /** Called when a progress starts or ends (the status bar refreshes the model state). */
        private readonly onChange: () => void = () => undefined,
    ) {}

    /** How many progress notifications are open (for tests and the log). */
    get openCount(): number {
        return this.shown.size;
    }

    /**
     * The `handleWorkDoneProgress` middleware. `next` hands the value to the client's own
     * status-bar progress; it is skipped for what is shown here, except `end`, which the client
     * needs to dispose of its listener for the token.
     */
    handle(token: ProgressToken, value: WorkDoneProgressValue, next: () => void): void {
        switch (value.kind) {
            case 'begin':
                if (value.cancellable === true) {
                    this.begin(token, value.title, value);
                    return;
                }
                break;
            case 'report': {
                const shown = this.shown.get(token);
                if (shown) {
                    CancellableProgress.report(shown, value);
                    return;
                }
                break;
            }
            case 'end':
                this.close(token);
                break;
        }
        next();
    }

    /** Closes every open notification (the client stopped; no `end` will come). */
    closeAll(): void {
        for (const token of [...this.shown.keys()]) {
            this.close(token);
        }
    }

    private begin(token: ProgressToken, title: string, value: { message?: string; percentage?: number }): void {
        this.close(token); // a repeated begin replaces, never stacks, the notification
        const view = this.open(title, () => {
            // The user asked; the server ends the progress when the fix stops, but the
            // notification closes now so that Cancel visibly works.
            this.sendCancel(token);
            this.close(token);
        });
        const shown: Shown = { view, reported: 0 };
        this.shown.set(token, shown);
        CancellableProgress.report(shown, value);
        this.onChange();
    }

    private close(token: ProgressToken): void {
        const shown = this.shown.get(token);
        if (shown) {
            this.shown.delete(token);
            shown.view.end();
            this.onChange();
        }
    }

    private static report(shown: Shown, value: { message?: string; percentage?: number }): void {
        const update: { message?: string; increment?: number } = {};
        if (typeof value.message === 'string' && value.message) {
            update.message = value.message;
        }
        if (typeof value.percentage === 'number' && Number.isFinite(value.percentage)) {
            const total = Math.max(0, Math.min(100, value.percentage));
            if (total > shown.reported) {
                update.increment = total - shown.reported;
                shown.reported = total;
            }
        }
        if (update.message !== undefined || update.increment !== undefined) {
            shown.view.report(update);
        }
    }
}
