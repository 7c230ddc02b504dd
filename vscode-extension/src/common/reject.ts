/**
 * "Sleepy Coder: Reject a Fix…": which offers at the cursor can be rejected, and what to say after.
 * Pure functions over the code actions VS Code returns (structural types, no `vscode` import), so
 * the rule "reject names what it rejects, never a silent default" is unit-tested.
 */
import { REJECT_TITLE_PREFIX, SERVER_COMMANDS } from './constants';

/** What `vscode.executeCodeActionProvider` returns: CodeActions (command: Command) or bare Commands (command: string). */
export interface ActionLike {
    readonly title: string;
    readonly command?: string | { readonly command: string; readonly arguments?: readonly unknown[] };
    readonly arguments?: readonly unknown[];
}

/** One entry of the list: the QuickPick shows `label`; `offerId` is what the server rejects. */
export interface RejectChoice {
    readonly label: string;
    readonly offerId: string;
}

/** Shown when the cursor has no offer to reject (the old client silently rejected the last fix instead). */
export const NOTHING_TO_REJECT = 'no Sleepy Coder fix at the cursor to reject';

function rejectArguments(action: ActionLike): readonly unknown[] | undefined {
    if (typeof action.command === 'string') {
        return action.command === SERVER_COMMANDS.reject ? (action.arguments ?? []) : undefined;
    }
    return action.command?.command === SERVER_COMMANDS.reject ? (action.command.arguments ?? []) : undefined;
}

/**
 * The server's reject actions among `actions`, labelled with the fix they reject (the title without
 * the "Reject this fix (sleepy-coder): " prefix), one per offer, in the server's order.
 */
export function rejectChoices(actions: readonly ActionLike[]): RejectChoice[] {
    const seen = new Set<string>();
    const choices: RejectChoice[] = [];
    for (const action of actions) {
        const offerId = rejectArguments(action)?.[0];
        if (typeof offerId !== 'string' || !offerId || seen.has(offerId)) {
            continue;
        }
        seen.add(offerId);
        const title = action.title.startsWith(REJECT_TITLE_PREFIX) ? action.title.slice(REJECT_TITLE_PREFIX.length) : action.title;
        choices.push({ label: title.trim() || offerId, offerId });
    }
    return choices;
}

/**
 * The message after the server recorded a rejection: `Rejected: <title>` with the server's own
 * title of the fix (`fallback`, the picked label, if the answer has none), and a note when the
 * server did not record it (learning off, or an excluded file).
 */
export function formatRejected(answer: unknown, fallback: string): string {
    const record = answer !== null && typeof answer === 'object' ? (answer as Record<string, unknown>) : {};
    const title = typeof record.title === 'string' && record.title.trim() ? record.title.trim() : fallback;
    const note = record.recorded === false ? ' (not recorded)' : '';
    return `Rejected: ${title}${note}`;
}
