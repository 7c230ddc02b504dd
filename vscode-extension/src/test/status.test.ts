import * as assert from 'node:assert/strict';
import {
    formatAdaptersChanged,
    formatForgotten,
    formatStatusBar,
    formatStatusDetails,
    parseAdaptersChanged,
    parseReportPath,
    parseServerStatus,
} from '../common/status';

const STATUS = {
    model: 'embedded:qwen2.5-coder-0.5b-instruct',
    modelState: 'loaded',
    routesWithAdapters: ['borrow', 'type_mismatch'],
    learner: { state: 'idle', lastCycle: '2025-01-02T03:04:05Z' },
    store: { outcomes: 12, accepted: 7 },
};

describe('status', () => {
    it('the status bar shows the learner state and the number of adapted routes', () => {
        const bar = formatStatusBar(parseServerStatus(STATUS), true);
        assert.equal(bar.text, '$(mortar-board) idle · 2 adapters');
        assert.match(bar.tooltip, /Routes with adapters: borrow, type_mismatch/);
    });

    it('one adapter is singular', () => {
        const bar = formatStatusBar(parseServerStatus({ ...STATUS, routesWithAdapters: ['borrow'] }), true);
        assert.equal(bar.text, '$(mortar-board) idle · 1 adapter');
    });

    it('a stopped server shows as off rather than stale numbers', () => {
        assert.match(formatStatusBar(parseServerStatus(STATUS), false).text, /off/);
    });

    it('a status sent as a JSON string is accepted', () => {
        assert.deepEqual(parseServerStatus(JSON.stringify(STATUS)), parseServerStatus(STATUS));
    });

    it('a malformed status is rejected or filled in, never thrown', () => {
        assert.equal(parseServerStatus(null), undefined);
        assert.equal(parseServerStatus('not json'), undefined);
        assert.equal(parseServerStatus([1, 2]), undefined);
        const partial = parseServerStatus({ routesWithAdapters: ['a', 3], store: { n: 'x', m: 2 } });
        assert.deepEqual(partial?.routesWithAdapters, ['a']);
        assert.deepEqual(partial?.store, { m: 2 });
        assert.equal(partial?.learner.state, 'unknown');
        assert.equal(partial?.learner.lastCycle, null);
    });

    it('the details name the model, learner, routes and record counts', () => {
        const details = formatStatusDetails(parseServerStatus(STATUS)!);
        assert.equal(
            details,
            [
                'Model: embedded:qwen2.5-coder-0.5b-instruct (loaded)',
                'Learner: idle; last cycle: 2025-01-02T03:04:05Z',
                'Routes with adapters: borrow, type_mismatch',
                'Records: outcomes: 12, accepted: 7',
            ].join('\n'),
        );
    });

    it('the adapters message prefers the server text and otherwise names the routes', () => {
        assert.equal(
            formatAdaptersChanged(parseAdaptersChanged({ routes: ['borrow'], version: 'v3', message: 'Borrow fixes improved.' })),
            'Sleepy Coder: Borrow fixes improved.',
        );
        assert.equal(
            formatAdaptersChanged(parseAdaptersChanged({ routes: ['borrow', 'lifetimes'], version: 'v3', message: '' })),
            'Sleepy Coder learned from your fixes: new adapters for borrow, lifetimes (version v3).',
        );
        assert.match(formatAdaptersChanged(parseAdaptersChanged(undefined)), /no routes/);
    });

    it('the report path is taken from {path}; null or an empty path means no report', () => {
        assert.equal(parseReportPath({ path: '/data/reports/cycle-3.md' }), '/data/reports/cycle-3.md');
        assert.equal(parseReportPath(null), undefined);
        assert.equal(parseReportPath({ path: '' }), undefined);
    });

    it('forgetting data reports the deleted counts', () => {
        assert.equal(formatForgotten({ outcomes: 12, adapters: 2 }), 'Sleepy Coder forgot your data (outcomes: 12, adapters: 2).');
        assert.equal(formatForgotten(null), 'Sleepy Coder forgot your data (nothing was stored).');
    });
});
