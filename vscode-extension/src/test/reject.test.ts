import * as assert from 'node:assert/strict';
import { formatRejected, NOTHING_TO_REJECT, rejectChoices } from '../common/reject';

/** What vscode.executeCodeActionProvider returns at a cursor with two offers (plus rust-analyzer's). */
const ACTIONS = [
    { title: 'rustc: add `#[derive(Debug)]`', command: { command: 'sleepy-coder.accept', arguments: ['o-1'] } },
    { title: 'Reject this fix (sleepy-coder): rustc: add `#[derive(Debug)]`', command: { command: 'sleepy-coder.reject', arguments: ['o-1'] } },
    { title: 'Fix with sleepy-coder (trait-bound)' },
    { title: 'Reject this fix (sleepy-coder): use `&str`', command: { command: 'sleepy-coder.reject', arguments: ['o-2'] } },
    { title: 'Add missing impl members', command: { command: 'rust-analyzer.applyActionGroup', arguments: [[]] } },
];

describe('reject a fix', () => {
    it('lists exactly the reject actions at the cursor, named by the fix they reject', () => {
        assert.deepEqual(rejectChoices(ACTIONS), [
            { label: 'rustc: add `#[derive(Debug)]`', offerId: 'o-1' },
            { label: 'use `&str`', offerId: 'o-2' },
        ]);
    });

    it('nothing to reject is an empty list (the command then says so), never a default', () => {
        assert.deepEqual(rejectChoices([]), []);
        assert.deepEqual(rejectChoices(ACTIONS.filter((action) => !action.title.startsWith('Reject'))), []);
        assert.equal(NOTHING_TO_REJECT, 'no Sleepy Coder fix at the cursor to reject');
    });

    it('accepts bare commands, skips malformed reject actions and repeats of one offer', () => {
        assert.deepEqual(
            rejectChoices([
                { title: 'Reject this fix (sleepy-coder): a', command: 'sleepy-coder.reject', arguments: ['o-3'] },
                { title: 'Reject this fix (sleepy-coder): a', command: { command: 'sleepy-coder.reject', arguments: ['o-3'] } },
                { title: 'Reject this fix (sleepy-coder): b', command: { command: 'sleepy-coder.reject' } },
                { title: 'Reject this fix (sleepy-coder): c', command: { command: 'sleepy-coder.reject', arguments: [42] } },
            ]),
            [{ label: 'a', offerId: 'o-3' }],
        );
    });

    it("says what was rejected in the server's words", () => {
        const answer = { offerId: 'o-1', fixId: 'f-9', title: 'rustc: add `#[derive(Debug)]`', outcome: 'rejected', recorded: true };
        assert.equal(formatRejected(answer, 'picked'), 'Rejected: rustc: add `#[derive(Debug)]`');
        assert.equal(formatRejected({ ...answer, recorded: false }, 'picked'), 'Rejected: rustc: add `#[derive(Debug)]` (not recorded)');
        assert.equal(formatRejected(null, 'use `&str`'), 'Rejected: use `&str`');
    });
});
