import * as assert from 'node:assert/strict';
import {
    ConfigReader,
    contributedDefaults,
    ExtensionSettings,
    reactionToChange,
    readSettings,
    SERVER_SETTING_KEYS,
    toDidChangeConfigurationParams,
    toInitializationOptions,
} from '../common/settings';

/** A configuration holding exactly the given values, like a user settings.json. */
function config(values: Record<string, unknown>): ConfigReader {
    return {
        get<T>(key: string): T | undefined {
            return values[key] as T | undefined;
        },
    };
}

describe('settings', () => {
    const defaults = contributedDefaults();

    it('unset settings take the defaults declared in package.json', () => {
        const { settings, problems } = readSettings(config({}), defaults);
        assert.deepEqual(problems, []);
        assert.deepEqual(settings, defaults);
        assert.equal(settings.model, 'embedded:qwen2.5-coder-0.5b-instruct');
        assert.equal(settings.maxNewTokens, 384);
        assert.equal(settings.python, '');
    });

    it('user values are passed to the server under the server names, without the client-only python', () => {
        const { settings } = readSettings(
            config({
                python: '/venv/bin/python',
                model: 'Qwen/Qwen2.5-Coder-0.5B-Instruct',
                device: 'cuda',
                maxNewTokens: 128,
                attempts: 1,
                modelEnabled: false,
                publishDiagnostics: false,
                learningEnabled: false,
                retentionDays: 0,
                excludeGlobs: ['secret/**'],
            }),
            defaults,
        );
        assert.deepEqual(toInitializationOptions(settings), {
            model: 'Qwen/Qwen2.5-Coder-0.5B-Instruct',
            device: 'cuda',
            maxNewTokens: 128,
            attempts: 1,
            modelEnabled: false,
            publishDiagnostics: false,
            learningEnabled: false,
            retentionDays: 0,
            excludeGlobs: ['secret/**'],
        });
    });

    it('invalid values fall back to the default and are reported by name', () => {
        const { settings, problems } = readSettings(
            config({ attempts: 0, maxNewTokens: '500', excludeGlobs: ['ok', 3], modelEnabled: 'yes' }),
            defaults,
        );
        assert.equal(settings.attempts, 3);
        assert.equal(settings.maxNewTokens, 384);
        assert.deepEqual(settings.excludeGlobs, []);
        assert.equal(settings.modelEnabled, true);
        assert.equal(problems.length, 4);
        assert.match(problems.join('\n'), /sleepyCoder\.attempts must be a whole number of at least 1, not 0/);
        assert.match(problems.join('\n'), /sleepyCoder\.maxNewTokens .* not "500"; using 384/);
    });

    it('retention of zero days is allowed (keep for ever) but negative is not', () => {
        assert.equal(readSettings(config({ retentionDays: 0 }), defaults).settings.retentionDays, 0);
        assert.equal(readSettings(config({ retentionDays: -1 }), defaults).settings.retentionDays, 90);
    });

    it('the python setting is trimmed so a stray space does not count as a choice', () => {
        assert.equal(readSettings(config({ python: '  ' }), defaults).settings.python, '');
    });

    it('initialization options do not share arrays with the settings object', () => {
        const { settings } = readSettings(config({ excludeGlobs: ['a'] }), defaults);
        const options = toInitializationOptions(settings);
        options.excludeGlobs.push('b');
        assert.deepEqual(settings.excludeGlobs, ['a']);
    });

    it('didChangeConfiguration carries the same options under the sleepyCoder section', () => {
        const settings: ExtensionSettings = { ...defaults, device: 'mps' };
        assert.deepEqual(toDidChangeConfigurationParams(settings), {
            settings: { sleepyCoder: toInitializationOptions(settings) },
        });
    });

    it('changing the interpreter restarts the server; other server settings are sent to it', () => {
        const changed = (...sections: string[]) => (section: string) => sections.includes(section);
        assert.equal(reactionToChange(changed('sleepyCoder.python')), 'restart');
        assert.equal(reactionToChange(changed('sleepyCoder.python', 'sleepyCoder.model')), 'restart');
        for (const key of SERVER_SETTING_KEYS) {
            assert.equal(reactionToChange(changed(`sleepyCoder.${key}`)), 'notify', key);
        }
        assert.equal(reactionToChange(changed('editor.fontSize', 'sleepyCoder.trace.server')), 'none');
    });
});
