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
    /**
     * Plain-text lines the server wrote for people ("Model: ... (not loaded yet)"); shown as they
     * are when present, so the wording lives in one place for every editor. Empty from an older
     * server, which then gets the lines formatted here from the other keys.
     */
    readonly summary: string[];
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
        summary: asStrings(record.summary)
            .map((line) => line.trimEnd())
            .filter((line) => line.trim() !== ''),
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

/**
 * How the model state reads in the status bar. The server's states (learner/model/handle.py):
 * off (modelEnabled false), not-loaded (loads on the first model fix), loading, ready, failed.
 * "unavailable" is what the user needs to know about "failed": no model fixes until a restart,
 * rustc's suggestions still come.
 */
export function describeModelState(state: string): string {
    switch (state) {
        case 'ready':
            return 'model ready';
        case 'loading':
            return 'model loading';
        case 'not-loaded':
            return 'model not loaded yet';
        case 'off':
            return 'model off';
        case 'failed':
        case 'unavailable':
            return 'model unavailable';
        default:
            return `model ${state}`;
    }
}

/**
 * Status bar text: the model state first (a model fix that is slow or impossible is the thing to
 * see at a glance), then the learner when it is doing something, then adapters once there are any.
 */
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
    const failed = status.modelState === 'failed' || status.modelState === 'unavailable';
    const parts = [describeModelState(status.modelState)];
    if (!['idle', 'off', 'unknown'].includes(status.learner.state)) {
        parts.push(`learner ${status.learner.state}`);
    }
    const adapters = status.routesWithAdapters.length;
    if (adapters > 0) {
        parts.push(plural(adapters, 'adapter'));
    }
    return {
        text: `${failed ? '$(warning)' : '$(sparkle)'} Sleepy Coder: ${parts.join(' · ')}`,
        tooltip: formatStatusDetails(status),
    };
}

/** Multi-line summary for the tooltip and the Show Status command: the server's lines when it sent them. */
export function formatStatusDetails(status: ServerStatus): string {
    if (status.summary.length > 0) {
        return status.summary.join('\n');
    }
    const routes = status.routesWithAdapters.length > 0 ? status.routesWithAdapters.join(', ') : 'none yet';
    const store = Object.entries(status.store)
        .map(([key, value]) => `${key}: ${value}`)
        .join(', ');
    return [
        `Model: ${status.model} (${describeModelState(status.modelState).replace(/^model /, '')})`,
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
