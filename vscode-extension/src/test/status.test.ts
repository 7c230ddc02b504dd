import * as assert from 'node:assert/strict';
import {
    describeModelState,
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
    modelState: 'ready',
    routesWithAdapters: ['borrow', 'type_mismatch'],
    learner: { state: 'idle', lastCycle: '2025-01-02T03:04:05Z' },
    store: { outcomes: 12, accepted: 7 },
};

describe('status', () => {
    it('the status bar shows the model state, then the adapted routes', () => {
        const bar = formatStatusBar(parseServerStatus(STATUS), true);
        assert.equal(bar.text, '$(sparkle) Sleepy Coder: model ready · 2 adapters');
        assert.match(bar.tooltip, /Routes with adapters: borrow, type_mismatch/);
    });

    it('one adapter is singular, none is not mentioned', () => {
        assert.equal(
            formatStatusBar(parseServerStatus({ ...STATUS, routesWithAdapters: ['borrow'] }), true).text,
            '$(sparkle) Sleepy Coder: model ready · 1 adapter',
        );
        assert.equal(
            formatStatusBar(parseServerStatus({ ...STATUS, routesWithAdapters: [] }), true).text,
            '$(sparkle) Sleepy Coder: model ready',
        );
    });

    it('a loading or failed model is what the status bar says first', () => {
        const bar = (modelState: string) => formatStatusBar(parseServerStatus({ ...STATUS, modelState }), true).text;
        assert.equal(bar('loading'), '$(sparkle) Sleepy Coder: model loading · 2 adapters');
        assert.equal(bar('failed'), '$(warning) Sleepy Coder: model unavailable · 2 adapters');
        assert.equal(bar('not-loaded'), '$(sparkle) Sleepy Coder: model not loaded yet · 2 adapters');
        assert.equal(bar('off'), '$(sparkle) Sleepy Coder: model off · 2 adapters');
        assert.equal(describeModelState('unavailable'), 'model unavailable');
        assert.equal(describeModelState('warming'), 'model warming', 'an unknown state is shown as the server says it');
    });

    it('a busy learner is shown; an idle one is not', () => {
        const training = { ...STATUS, routesWithAdapters: [], learner: { state: 'training', lastCycle: null } };
        assert.equal(formatStatusBar(parseServerStatus(training), true).text, '$(sparkle) Sleepy Coder: model ready · learner training');
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
                'Model: embedded:qwen2.5-coder-0.5b-instruct (ready)',
                'Learner: idle; last cycle: 2025-01-02T03:04:05Z',
                'Routes with adapters: borrow, type_mismatch',
                'Records: outcomes: 12, accepted: 7',
            ].join('\n'),
        );
    });

    it("the server's summary lines are shown as they are, in the tooltip and the details", () => {
        const summary = [
            'Model: Qwen/Qwen2.5-Coder-0.5B-Instruct (not loaded yet)',
            'Learner: idle; last cycle 2026-12-02 15:00 (nothing to learn)',
            'Adapters: none yet',
            'Recorded: 3 offers, 1 accepted',
        ];
        const status = parseServerStatus({ ...STATUS, summary: [...summary, '', 7] });
        assert.deepEqual(status?.summary, summary, 'blank lines and non-strings are dropped');
        assert.equal(formatStatusDetails(status), summary.join('\n'));
        assert.equal(formatStatusBar(status, true).tooltip, summary.join('\n'));
    });

    it('without a summary (an older server) the lines are formatted from the other keys', () => {
        assert.deepEqual(parseServerStatus(STATUS)?.summary, []);
        assert.deepEqual(parseServerStatus({ ...STATUS, summary: 'Model: x' })?.summary, []);
        assert.match(formatStatusDetails(parseServerStatus({ ...STATUS, summary: [] })!), /^Model: embedded/);
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
