/**
 * Names shared by the extension and the server. Kept in one file so that a renamed command or
 * notification is changed in one place; nothing here imports `vscode`, so tests can load it.
 */
import * as path from 'path';

/** The folder holding package.json (this file compiles to out/common/constants.js). */
export const EXTENSION_ROOT_DIR = path.dirname(path.dirname(__dirname));

/** Settings section, also the language client id (so `sleepyCoder.trace.server` works). */
export const CONFIG_SECTION = 'sleepyCoder';

/** Commands the server implements (workspace/executeCommand). */
export const SERVER_COMMANDS = {
    accept: 'sleepy-coder.accept',
    reject: 'sleepy-coder.reject',
    /** Says why a model fix could not be made (a resolved model action without an edit runs it). */
    explain: 'sleepy-coder.explain',
    learnNow: 'sleepy-coder.learnNow',
    status: 'sleepy-coder.status',
    forgetData: 'sleepy-coder.forgetData',
    openReport: 'sleepy-coder.openReport',
} as const;

/**
 * Commands this extension contributes. They use the `sleepyCoder.` prefix on purpose: the language
 * client registers every server command (`sleepy-coder.*`) as a VS Code command itself, and a
 * second registration under the same id would fail.
 */
export const EXTENSION_COMMANDS = {
    learnNow: 'sleepyCoder.learnNow',
    showStatus: 'sleepyCoder.showStatus',
    openReport: 'sleepyCoder.openReport',
    restart: 'sleepyCoder.restart',
    forgetData: 'sleepyCoder.forgetData',
    rejectFix: 'sleepyCoder.rejectFix',
} as const;

/** Title prefix of the server's reject code actions; the list shows the rest (the fix's own title). */
export const REJECT_TITLE_PREFIX = 'Reject this fix (sleepy-coder): ';

/** rust-analyzer's extension id: when it is installed, publishDiagnostics "auto" means off. */
export const RUST_ANALYZER_EXTENSION_ID = 'rust-lang.rust-analyzer';

/** Server -> client notification sent after the learner swapped in new adapters. */
export const ADAPTERS_CHANGED_NOTIFICATION = 'sleepy-coder/adaptersChanged';

/** Interpreter used when neither the setting nor the Python extension names one. */
export const DEFAULT_PYTHON = 'python3';

/** How often the status bar asks the server for the learner state. */
export const STATUS_REFRESH_MS = 60_000;
