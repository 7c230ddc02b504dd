-- Unit checks of the sleepy_coder module that need no server: option checking, client
-- configuration, crate-root search, status formatting, the progress line, :SleepyCoderReject
-- against a stand-in client, and the interpreter check. Run by tests/run.sh with any
-- Neovim >= 0.7; exits non-zero on the first failure.
local sc = require('sleepy_coder')
local failures, passed = {}, 0

local function test(name, fn)
  local ok, err = pcall(fn)
  if ok then
    passed = passed + 1
  else
    table.insert(failures, name .. ': ' .. tostring(err))
  end
end

local function eq(actual, expected)
  if not vim.deep_equal(actual, expected) then
    error(string.format('expected %s, got %s', vim.inspect(expected), vim.inspect(actual)), 2)
  end
end

local function errors_with(pattern, fn)
  local ok, err = pcall(fn)
  if ok or not tostring(err):match(pattern) then
    error(string.format('expected an error matching %q, got %s', pattern, tostring(err)), 2)
  end
end

test('the default command runs the server module with python3', function()
  eq(sc.resolve_options({}).cmd, { 'python3', '-m', 'lsp_server' })
end)

test('opts.python changes the interpreter and opts.cmd replaces the whole command', function()
  eq(sc.resolve_options({ python = '/venv/bin/python' }).cmd, { '/venv/bin/python', '-m', 'lsp_server' })
  eq(sc.resolve_options({ python = 'x', cmd = { 'sleepy-coder', 'serve' } }).cmd, { 'sleepy-coder', 'serve' })
end)

test('a misspelt setting is refused with the list of known names', function()
  errors_with('unknown setting "maxTokens" %(known: attempts, backend, backendModel, backendTimeoutS, backgroundFixes, candidates, cargoNetwork, device', function()
    sc.resolve_options({ settings = { maxTokens = 10 } })
  end)
end)

test('a setting of the wrong type is refused by name', function()
  errors_with('setting attempts must be a number, not string', function()
    sc.resolve_options({ settings = { attempts = '3' } })
  end)
end)

test('a command that is not a list of strings is refused', function()
  errors_with('opts.cmd must be a non%-empty list of strings', function()
    sc.resolve_options({ cmd = 'python3 -m lsp_server' })
  end)
  errors_with('opts.on_attach must be a function', function()
    sc.resolve_options({ on_attach = 'no' })
  end)
end)

test('the settings go to the server as initializationOptions and under the sleepyCoder section', function()
  local config = sc.client_config(sc.resolve_options({ settings = { attempts = 1, modelEnabled = false } }))
  eq(config.name, 'sleepy_coder')
  eq(config.init_options, { attempts = 1, modelEnabled = false })
  eq(config.settings, { sleepyCoder = { attempts = 1, modelEnabled = false } })
  eq(type(config.handlers['sleepy-coder/adaptersChanged']), 'function')
  eq(type(config.commands['sleepy-coder.accept']), 'function')
end)

test('no settings are sent as JSON objects, not arrays', function()
  local config = sc.client_config(sc.resolve_options({}))
  eq(vim.json.encode(config.init_options), '{}')
  eq(vim.json.encode(config.settings), '{"sleepyCoder":{}}')
end)

test('the root is the nearest directory with a Cargo.toml', function()
  local base = vim.fn.tempname()
  vim.fn.mkdir(base .. '/ws/member/src/bin', 'p')
  vim.fn.writefile({ '[workspace]' }, base .. '/ws/Cargo.toml')
  vim.fn.writefile({ '[package]' }, base .. '/ws/member/Cargo.toml')
  vim.cmd('edit ' .. vim.fn.fnameescape(base .. '/ws/member/src/bin/tool.rs'))
  eq(sc.find_root(0), vim.fn.resolve(base .. '/ws/member'))
  vim.cmd('edit ' .. vim.fn.fnameescape(base .. '/loose.rs'))
  eq(sc.find_root(0), nil)
  eq(sc.attach(0), nil)
end)

-- Records vim.notify calls while `fn` runs (restored afterwards, also on failure).
local function notified(fn)
  local messages = {}
  local saved = vim.notify
  vim.notify = function(message, level)
    table.insert(messages, { message = message, level = level })
  end
  local ok, err = pcall(fn)
  vim.notify = saved
  if not ok then
    error(err, 0)
  end
  return messages
end

-- Replaces `tbl[key]` while `fn` runs.
local function stubbed(tbl, key, value, fn)
  local saved = tbl[key]
  tbl[key] = value
  local ok, err = pcall(fn)
  tbl[key] = saved
  if not ok then
    error(err, 0)
  end
end

-- A stand-in for an LSP client: answers requests from `answers[method]` (a value, or a function
-- of the params returning err, result) at once and records what was sent. Works with the
-- field-call (0.7-0.10) and the method-call (0.11) style.
local function fake_client(answers)
  local sent = {}
  local client = { id = 4242, name = 'sleepy_coder', offset_encoding = 'utf-16', attached_buffers = {} }
  local function request(method, params, handler)
    table.insert(sent, { method = method, params = params })
    local answer = answers[method]
    local err, result = nil, answer
    if type(answer) == 'function' then
      err, result = answer(params)
    end
    if handler then
      handler(err, result, { method = method, client_id = client.id })
    end
    return true, #sent
  end
  client.request = function(first, ...)
    if first == client then
      return request(...)
    end
    return request(first, ...)
  end
  return client, sent
end

local function methods(sent)
  return vim.tbl_map(function(item)
    return item.method
  end, sent)
end

-- A named Rust buffer, so code-action params have a file URI.
local function rust_buffer()
  vim.cmd('edit ' .. vim.fn.fnameescape(vim.fn.tempname() .. '.rs'))
  vim.api.nvim_buf_set_lines(0, 0, -1, false, { 'fn main() {}' })
  return vim.api.nvim_get_current_buf()
end

local function reject_action(offer, title)
  return {
    title = 'Reject this fix (sleepy-coder): ' .. title,
    kind = 'quickfix',
    command = { title = 'Reject', command = 'sleepy-coder.reject', arguments = { offer } },
  }
end

test('the status shows the server summary lines as they are, as plain text', function()
  local lines = sc.format_status({
    model = 'Qwen/x',
    modelState = 'not-loaded',
    store = { suggestions = 3 },
    summary = { 'Model: Qwen/x (not loaded yet)', 'Recorded: 3 offers, 1 accepted' },
  })
  eq(lines, { 'Model: Qwen/x (not loaded yet)', 'Recorded: 3 offers, 1 accepted' })
  eq(sc.format_status({ summary = { 'one\ntwo' } }), { 'one', 'two' })
end)

test('without a summary the status is readable: labels, no markdown, no table names', function()
  local lines = sc.format_status({
    model = 'embedded:qwen2.5-coder-0.5b-instruct',
    modelState = 'ready',
    routesWithAdapters = { 'borrow', 'type_mismatch' },
    learner = { state = 'idle', lastCycle = '2026-12-02T15:00:31.123+00:00' },
    store = {
      diagnostics = 4, suggestions = 3, outcomes = 3, training_sets = 1, learner_cycles = 2,
      adapter_versions = 0, eval_runs = 0, eval_results = 0,
      accepted = 1, rejected = 2, edited = 0, reverted = 0, ignored = 0,
    },
  })
  eq(lines, {
    'Model: embedded:qwen2.5-coder-0.5b-instruct (loaded)',
    'Learner: idle; last cycle 2026-12-02 15:00',
    'Adapters: borrow, type_mismatch',
    'Recorded: 4 errors seen, 3 fixes offered, 1 accepted, 2 rejected, 1 training set, 2 learning cycles',
  })
  for _, line in ipairs(lines) do
    eq(line:match('[#*`]') == nil, true)
    for _, raw in ipairs({ 'suggestions', 'training_sets', 'learner_cycles', 'outcomes', 'diagnostics' }) do
      eq(line:find(raw, 1, true) == nil, true)
    end
  end
  eq(sc.format_status({ modelState = 'not-loaded', learner = { state = 'idle', lastCycle = vim.NIL }, store = {} }), {
    'Model: unknown (not loaded yet)',
    'Learner: idle; no cycle yet',
    'Adapters: none yet',
    'Recorded: nothing yet',
  })
  eq(sc.format_status('{"store": {"offers": 1, "suggestions": 1, "newThing_count": 2}}')[4], 'Recorded: 1 fix offered, 2 new thing count')
  eq(sc.format_status(vim.NIL)[1]:match('^sleepy%-coder status') ~= nil, true)
end)

test('model progress is one line: begin, reports, then done', function()
  local token = 'sleepy-coder/fix-1'
  eq(sc.progress_line(token, { kind = 'begin', title = 'sleepy-coder: fixing E0277 (trait-bound)', cancellable = true }),
    'sleepy-coder: fixing E0277 (trait-bound)')
  eq(sc.progress_line(token, { kind = 'report', message = 'loading the model' }),
    'sleepy-coder: fixing E0277 (trait-bound): loading the model')
  eq(sc.progress_line(token, { kind = 'report', message = 'generating', percentage = 40 }),
    'sleepy-coder: fixing E0277 (trait-bound): generating (40%)')
  eq(sc.progress_line(token, { kind = 'end' }), 'sleepy-coder: fixing E0277 (trait-bound): done')
  eq(sc.progress_line(token, { kind = 'report', message = 'late' }), 'sleepy-coder: late')
  eq(sc.progress_line('rust-analyzer/indexing', { kind = 'begin', title = 'Indexing' }), nil)
  eq(sc.progress_line(7, { kind = 'begin', title = 'x' }), nil)
end)

test('the progress handler echoes our tokens and always hands on to the default handler', function()
  local chained, echoed = {}, {}
  stubbed(vim.lsp.handlers, '$/progress', function(_, result)
    table.insert(chained, result.token)
  end, function()
    stubbed(vim.api, 'nvim_echo', function(chunks)
      table.insert(echoed, chunks[1][1])
    end, function()
      local handler = sc.client_config(sc.resolve_options({})).handlers['$/progress']
      local ctx = { client_id = 1, method = '$/progress' }
      handler(nil, { token = 'sleepy-coder/2', value = { kind = 'begin', title = 'sleepy-coder: fixing E0308 (type-mismatch)' } }, ctx)
      handler(nil, { token = 'sleepy-coder/2', value = { kind = 'report', message = 'verifying 1 candidate' } }, ctx)
      handler(nil, { token = 'other/1', value = { kind = 'begin', title = 'Indexing' } }, ctx)
      handler(nil, { token = 'sleepy-coder/2', value = { kind = 'end' } }, ctx)
    end)
  end)
  eq(chained, { 'sleepy-coder/2', 'sleepy-coder/2', 'other/1', 'sleepy-coder/2' })
  eq(echoed, {
    'sleepy-coder: fixing E0308 (type-mismatch)',
    'sleepy-coder: fixing E0308 (type-mismatch): verifying 1 candidate',
    'sleepy-coder: fixing E0308 (type-mismatch): done',
  })
end)

test('only our two handlers are set: window/showMessage stays with Neovim; exits are reported', function()
  local config = sc.client_config(sc.resolve_options({}))
  local names = vim.tbl_keys(config.handlers)
  table.sort(names)
  eq(names, { '$/progress', 'sleepy-coder/adaptersChanged' })
  eq(type(config.on_exit), 'function')
  eq(sc.resolve_options({ settings = { editWindowS = 120 } }).settings.editWindowS, 120)
  errors_with('setting editWindowS must be a number', function()
    sc.resolve_options({ settings = { editWindowS = '10m' } })
  end)
  errors_with('opts.progress must be true or false', function()
    sc.resolve_options({ progress = 'yes' })
  end)
end)

test('reject with no offer at the cursor warns and sends nothing, even after an accept', function()
  local bufnr = rust_buffer()
  local client, sent = fake_client({
    ['workspace/executeCommand'] = { offerId = 'o-1', fixId = 'f', title = 'rustc: clone', outcome = 'accepted', recorded = true },
    ['textDocument/codeAction'] = {
      { title = 'rustc: clone the value', command = { command = 'sleepy-coder.accept', arguments = { 'o-1' } } },
      { title = 'Reject the clippy lint', command = { command = 'other.reject', arguments = { 1 } } },
    },
  })
  stubbed(sc, 'client', function()
    return client
  end, function()
    -- The user accepted a fix earlier (the code-action UI runs the client-side accept command).
    local accept = sc.client_config(sc.resolve_options({})).commands['sleepy-coder.accept']
    accept({ command = 'sleepy-coder.accept', arguments = { 'o-1' } }, { bufnr = bufnr, client_id = client.id })
    eq(sc.last_offer_id(), 'o-1')
    eq(sc.last_accepted().fixId, 'f')
    sent[1] = nil
    local messages = notified(function()
      sc.reject()
    end)
    eq(methods(sent), { 'textDocument/codeAction' })
    eq(messages, { { message = 'sleepy-coder: no sleepy-coder fix at the cursor to reject', level = vim.log.levels.WARN } })
  end)
  -- Not attached at all: the same warning, and no request.
  local messages = notified(function()
    stubbed(sc, 'client', function()
      return nil
    end, sc.reject)
  end)
  eq(#messages, 1)
  eq(messages[1].level, vim.log.levels.WARN)
  eq(messages[1].message:match('^sleepy%-coder: no sleepy%-coder fix at the cursor to reject') ~= nil, true)
end)

test('reject names what it rejected: the one offer at the cursor, or the one picked', function()
  rust_buffer()
  local client, sent = fake_client({
    ['textDocument/codeAction'] = {
      { title = 'rustc: clone the value', command = { command = 'sleepy-coder.accept', arguments = { 'o-1' } } },
      reject_action('o-1', 'rustc: clone the value'),
    },
    ['workspace/executeCommand'] = function(params)
      return nil, { offerId = params.arguments[1], fixId = 'f1', title = 'rustc: clone the value (server)', outcome = 'rejected', recorded = true }
    end,
  })
  stubbed(sc, 'client', function()
    return client
  end, function()
    local messages = notified(sc.reject)
    eq(methods(sent), { 'textDocument/codeAction', 'workspace/executeCommand' })
    eq(sent[2].params, { command = 'sleepy-coder.reject', arguments = { 'o-1' } })
    eq(messages[1].message, 'sleepy-coder: rejected: rustc: clone the value (server)')
  end)

  -- Two offers: the user picks from a list of plain fix titles; an answer without a title
  -- falls back to the action's title.
  local two, sent2 = fake_client({
    ['textDocument/codeAction'] = { reject_action('o-2', 'rustc: borrow here'), reject_action('o-3', 'add derive') },
    ['workspace/executeCommand'] = { outcome = 'rejected' },
  })
  local shown = nil
  stubbed(vim.ui, 'select', function(items, opts, on_choice)
    shown = vim.tbl_map(opts.format_item, items)
    on_choice(items[2])
  end, function()
    stubbed(sc, 'client', function()
      return two
    end, function()
      local messages = notified(sc.reject)
      eq(shown, { 'rustc: borrow here', 'add derive' })
      eq(sent2[2].params.arguments, { 'o-3' })
      eq(messages[1].message, 'sleepy-coder: rejected: add derive')
    end)
  end)

  -- Cancelling the list sends nothing; a server error is shown.
  local three, sent3 = fake_client({
    ['textDocument/codeAction'] = { reject_action('o-4', 'a'), reject_action('o-5', 'b') },
    ['workspace/executeCommand'] = function()
      return { code = -32602, message = 'unknown offer o-4' }, nil
    end,
  })
  stubbed(sc, 'client', function()
    return three
  end, function()
    stubbed(vim.ui, 'select', function(_, _, on_choice)
      on_choice(nil)
    end, sc.reject)
    eq(methods(sent3), { 'textDocument/codeAction' })
    stubbed(vim.ui, 'select', function(items, _, on_choice)
      on_choice(items[1])
    end, function()
      local messages = notified(sc.reject)
      eq(messages[1], { message = 'sleepy-coder: rejecting failed: unknown offer o-4', level = vim.log.levels.ERROR })
    end)
  end)
end)

test('an interpreter that cannot run the server is named, once, and no client starts', function()
  local ok, message = sc.check_interpreter({ '/no/such/python3', '-m', 'lsp_server' })
  eq(ok, false)
  eq(message:match('^sleepy%-coder: cannot start the server: /no/such/python3 is not an executable') ~= nil, true)
  eq(message:match("set python = '") ~= nil, true)
  eq(sc.check_interpreter({ 'sleepy-coder', 'serve' }), true)
  eq(sc.check_interpreter({ 'python3', '-u', '-m', 'lsp_server' }), true)

  if vim.fn.executable('python3') == 1 then
    local bad, why = sc.check_interpreter({ 'python3', '-m', 'no_such_module_for_sleepy_coder' })
    eq(bad, false)
    local expected = "^sleepy%-coder: python3 cannot import no_such_module_for_sleepy_coder %(ModuleNotFoundError: "
      .. "No module named 'no_such_module_for_sleepy_coder'%): install sleepy%-coder into that Python %(scripts/setup.sh%)"
    eq(why:match(expected) ~= nil, true)
    eq(sc.check_interpreter({ 'python3', '-c', 'pass' }), true)
  end

  -- Cached: the interpreter runs once per python and module, not once per buffer.
  local runs = 0
  stubbed(vim.fn, 'system', function()
    runs = runs + 1
    return "Traceback (most recent call last):\nModuleNotFoundError: No module named 'lsp_server'\n"
  end, function()
    stubbed(vim.fn, 'executable', function()
      return 1
    end, function()
      local messages = notified(function()
        sc.setup({ python = '/opt/fake/python3', commands = false })
        local root = vim.fn.tempname()
        vim.fn.mkdir(root .. '/src', 'p')
        vim.fn.writefile({ '[package]' }, root .. '/Cargo.toml')
        for _, name in ipairs({ 'main.rs', 'lib.rs' }) do
          vim.cmd('edit ' .. vim.fn.fnameescape(root .. '/src/' .. name))
          eq(sc.attach(0), nil)
        end
      end)
      eq(runs, 1)
      eq(#messages, 1)
      eq(messages[1].level, vim.log.levels.ERROR)
      eq(messages[1].message:match('^sleepy%-coder: /opt/fake/python3 cannot import lsp_server %(ModuleNotFoundError') ~= nil, true)
      eq(sc.client_id(), nil)
    end)
  end)
end)

test('restart with no server running says what it did', function()
  local messages = notified(function()
    sc.setup({ cmd = { 'false' }, commands = false })
    vim.cmd('enew')
    eq(sc.restart(), 0)
  end)
  eq(messages[#messages].message, 'sleepy-coder: no server was running; no Rust buffer in a Cargo crate is open, so none was started')
end)

test('status, learn-now and open-report show the server answers as plain text', function()
  rust_buffer()
  local answers = {
    ['sleepy-coder.status'] = { summary = { 'Model: m (off)', 'Recorded: nothing yet' } },
    ['sleepy-coder.learnNow'] = 'started a learning cycle; you will be told when it finishes',
    ['sleepy-coder.openReport'] = vim.NIL,
  }
  local client = fake_client({
    ['workspace/executeCommand'] = function(params)
      return nil, answers[params.command]
    end,
  })
  stubbed(sc, 'client', function()
    return client
  end, function()
    local before = #vim.api.nvim_list_wins()
    sc.status()
    local wins = vim.api.nvim_list_wins()
    eq(#wins, before + 1)
    local float = wins[#wins]
    local buf = vim.api.nvim_win_get_buf(float)
    eq(vim.api.nvim_buf_get_lines(buf, 0, -1, false), { 'Model: m (off)', 'Recorded: nothing yet' })
    eq(vim.bo[buf].filetype, 'text')
    vim.api.nvim_win_close(float, true)
    local messages = notified(function()
      sc.learn_now()
      sc.open_report()
    end)
    eq(vim.tbl_map(function(m)
      return m.message
    end, messages), {
      'sleepy-coder: started a learning cycle; you will be told when it finishes',
      'sleepy-coder: no report yet: one is written after the first learning cycle',
    })
  end)
end)

test('setup registers the user commands and starts nothing', function()
  sc.setup({ cmd = { 'false' } })
  for _, name in ipairs({ 'SleepyCoderReject', 'SleepyCoderRestart', 'SleepyCoderLearnNow', 'SleepyCoderStatus',
    'SleepyCoderOpenReport', 'SleepyCoderForgetData' }) do
    eq(vim.fn.exists(':' .. name), 2)
  end
  eq(sc.client_id(), nil)
end)

if #failures > 0 then
  io.stderr:write(table.concat(failures, '\n') .. '\n')
  vim.cmd('cquit 1')
end
io.stdout:write(string.format('sleepy_coder unit checks: %d passed (%s)\n', passed, vim.fn.execute('version'):match('NVIM v[%d%.]+')))
vim.cmd('quitall!')
