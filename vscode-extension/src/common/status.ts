/**
 * Turning the server's `sleepy-coder.status` answer and `adaptersChanged` notification into text
 * for the status bar and messages. Pure and defensive: the server is a separate program, so
 * anything it sends is validated here rather than trusted.
 */

export interface LearnerStatus {
    readonly state: string;
    readonly lastCycle: string | null;
}

export interface ServerStatus {
    readonly model: string;
    readonly modelState: string;
    readonly routesWithAdapters: string[];
    readonly learner: LearnerStatus;
    readonly store: Record<string, number>;
}

export interface AdaptersChanged {
    readonly routes: string[];
    readonly version: string;
    readonly message: string;
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
    if (typeof value === 'string') {
        try {
            return asRecord(JSON.parse(value));
        } catch {
            return undefined;
        }
    }
    return value !== null && typeof value === 'object' && !Array.isArray(value)
        ? (value as Record<string, unknown>)
        : undefined;
}

function asString(value: unknown, fallback: string): string {
    return typeof value === 'string' ? value : fallback;
}

function asStrings(value: unknown): string[] {
    return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

/** The status object, or undefined when the answer is not an object (a server error or an old server). */
export function parseServerStatus(raw: unknown): ServerStatus | undefined {
    const record = asRecord(raw);
    if (!record) {
        return undefined;
    }
    const learner = asRecord(record.learner) ?? {};
    const store: Record<string, number> = {};
    for (const [key, value] of Object.entries(asRecord(record.store) ?? {})) {
        if (typeof value === 'number') {
            store[key] = value;
        }
    }
    return {
        model: asString(record.model, 'unknown'),
        modelState: asString(record.modelState, 'unknown'),
        routesWithAdapters: asStrings(record.routesWithAdapters),
        learner: {
            state: asString(learner.state, 'unknown'),
            lastCycle: typeof learner.lastCycle === 'string' ? learner.lastCycle : null,
        },
        store,
    };
}

export function parseAdaptersChanged(raw: unknown): AdaptersChanged {
    const record = asRecord(raw) ?? {};
    return {
        routes: asStrings(record.routes),
        version: asString(record.version, ''),
        message: asString(record.message, ''),
    };
}

export interface StatusBarText {
    readonly text: string;
    readonly tooltip: string;
}

function plural(count: number, word: string): string {
    return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** Status bar text: learner state and adapter count, or why there is none. */
export function formatStatusBar(status: ServerStatus | undefined, serverRunning: boolean): StatusBarText {
    if (!serverRunning) {
        return {
            text: '$(circle-slash) Sleepy Coder: off',
            tooltip: 'The Sleepy Coder server is not running. Click for details; see the "Sleepy Coder" output.',
        };
    }
    if (!status) {
        return { text: '$(sync~spin) Sleepy Coder', tooltip: 'Waiting for the Sleepy Coder server to report its status.' };
    }
    const adapters = status.routesWithAdapters.length;
    return {
        text: `$(mortar-board) ${status.learner.state} · ${plural(adapters, 'adapter')}`,
        tooltip: formatStatusDetails(status),
    };
}

/** Multi-line summary for the tooltip and the Show Status command. */
export function formatStatusDetails(status: ServerStatus): string {
    const routes = status.routesWithAdapters.length > 0 ? status.routesWithAdapters.join(', ') : 'none yet';
    const store = Object.entries(status.store)
        .map(([key, value]) => `${key}: ${value}`)
        .join(', ');
    return [
        `Model: ${status.model} (${status.modelState})`,
        `Learner: ${status.learner.state}; last cycle: ${status.learner.lastCycle ?? 'never'}`,
        `Routes with adapters: ${routes}`,
        `Records: ${store || 'none'}`,
    ].join('\n');
}

/** The information message after the learner swapped adapters in. */
export function formatAdaptersChanged(change: AdaptersChanged): string {
    if (change.message.trim()) {
        return `Sleepy Coder: ${change.message.trim()}`;
    }
    const routes = change.routes.length > 0 ? change.routes.join(', ') : 'no routes';
    const version = change.version ? ` (version ${change.version})` : '';
    return `Sleepy Coder learned from your fixes: new adapters for ${routes}${version}.`;
}

/** The report file named by `sleepy-coder.openReport` ({path} or null), if any. */
export function parseReportPath(raw: unknown): string | undefined {
    const path = asRecord(raw)?.path;
    return typeof path === 'string' && path ? path : undefined;
}

/** The message after `sleepy-coder.forgetData`, listing what was deleted. */
export function formatForgotten(raw: unknown): string {
    const counts = Object.entries(asRecord(raw) ?? {})
        .filter(([, value]) => typeof value === 'number')
        .map(([key, value]) => `${key}: ${String(value)}`)
        .join(', ');
    return `Sleepy Coder forgot your data (${counts || 'nothing was stored'}).`;
}
