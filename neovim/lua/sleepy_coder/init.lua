-- sleepy-coder for Neovim: registers the sleepy-coder language server for Rust buffers.
--
-- Neovim 0.11+ gets `vim.lsp.config` + `vim.lsp.enable`; 0.7-0.10 get a FileType autocmd that
-- starts one client per crate root with `vim.lsp.start_client` (0.7 has no `vim.lsp.start`).
-- Fixes are ordinary code actions: applying one runs its edit, then its `sleepy-coder.accept`
-- command, which both paths do through the core code-action UI.
--
-- `setup` only registers the client (and, unless `commands = false`, the user commands), so
-- tests and plugin managers can call it with any command line.
--
-- What the user sees comes from here, never from a plugin: model progress (`$/progress`) as one
-- line in the message area, the server's `window/showMessage` (Neovim's default handler), and a
-- one-line reason when the server cannot start (the interpreter check) or exits with an error.

local M = {}

local NAME = 'sleepy_coder'
local SECTION = 'sleepyCoder'
local ADAPTERS_CHANGED = 'sleepy-coder/adaptersChanged'
local SERVER_COMMANDS = {
  accept = 'sleepy-coder.accept',
  reject = 'sleepy-coder.reject',
  learn_now = 'sleepy-coder.learnNow',
  status = 'sleepy-coder.status',
  forget_data = 'sleepy-coder.forgetData',
  open_report = 'sleepy-coder.openReport',
}
-- Progress tokens the server creates for model fixes; other servers' progress is left alone.
local PROGRESS_PREFIX = 'sleepy-coder/'
-- The reject action's title is this prefix plus the fix's title (lsp_server/convert.py).
local REJECT_PREFIX = 'Reject this fix (sleepy-coder): '
-- The settings the server understands (learner/config.py), as the editor spells them.
local KNOWN_SETTINGS = {
  model = 'string',
  device = 'string',
  backend = 'string',
  backendModel = 'string',
  backendTimeoutS = 'number',
  publishAdapters = 'boolean',
  maxNewTokens = 'number',
  attempts = 'number',
  candidates = 'number',
  backgroundFixes = 'boolean',
  modelEnabled = 'boolean',
  publishDiagnostics = 'boolean',
  learningEnabled = 'boolean',
  retentionDays = 'number',
  excludeGlobs = 'table',
  trusted = 'boolean',
  cargoNetwork = 'boolean',
  editWindowS = 'number',
}

M.defaults = {
  -- Full command line; when nil it is { python, '-m', module }.
  cmd = nil,
  python = 'python3',
  module = 'lsp_server',
  filetypes = { 'rust' },
  -- The client's root is the directory of the nearest of these, searching upwards.
  root_markers = { 'Cargo.toml' },
  -- Server settings (names as above); only the ones given are sent, the server has the defaults.
  settings = {},
  -- function(client, bufnr), called after sleepy-coder attaches to a buffer.
  on_attach = nil,
  capabilities = nil,
  -- function(params), called on `sleepy-coder/adaptersChanged` (after the notification).
  on_adapters_changed = nil,
  -- Show a vim.notify message when the learner swapped in new adapters.
  notify = true,
  -- Show model progress ("sleepy-coder: fixing E0277 (trait-bound): loading the model") in the
  -- message area. Turn off when a progress plugin (fidget.nvim, a statusline) shows it already;
  -- the progress still reaches Neovim's own handler either way.
  progress = true,
  -- Create the :SleepyCoder* user commands.
  commands = true,
}

-- The only mutable state: the resolved options, the last accepted offer (for tests and scripts;
-- never a default for :SleepyCoderReject, which only rejects what it can name), the titles of
-- the progress tokens in flight, and the interpreter checks already done (python -> message|false).
local state = {
  opts = nil,
  group = nil,
  last_offer_id = nil,
  last_accepted = nil,
  progress = {},
  interpreters = {},
  reported = {},
}

local uv = vim.uv or vim.loop
local has_011 = vim.fn.has('nvim-0.11') == 1 and vim.lsp.config ~= nil and vim.lsp.enable ~= nil

local function notify(message, level)
  vim.notify('sleepy-coder: ' .. message, level or vim.log.levels.INFO)
end

---------------------------------------------------------------------------------------------------
-- Options
---------------------------------------------------------------------------------------------------

local function fail(message)
  error("sleepy_coder.setup: " .. message, 0)
end

local function is_list_of_strings(value)
  if type(value) ~= 'table' then
    return false
  end
  for key, item in pairs(value) do
    if type(key) ~= 'number' or type(item) ~= 'string' then
      return false
    end
  end
  return #value > 0
end

local function check_settings(settings)
  if type(settings) ~= 'table' then
    fail('opts.settings must be a table of sleepyCoder settings')
  end
  for key, value in pairs(settings) do
    local kind = KNOWN_SETTINGS[key]
    if kind == nil then
      local names = vim.tbl_keys(KNOWN_SETTINGS)
      table.sort(names)
      fail(string.format('unknown setting %q (known: %s)', tostring(key), table.concat(names, ', ')))
    end
    if type(value) ~= kind then
      fail(string.format('setting %s must be a %s, not %s', key, kind, type(value)))
    end
  end
end

--- Merges `opts` over the defaults and checks them; errors name the bad option.
function M.resolve_options(opts)
  opts = opts or {}
  if type(opts) ~= 'table' then
    fail('opts must be a table')
  end
  local resolved = vim.tbl_extend('force', vim.deepcopy(M.defaults), opts)
  resolved.settings = vim.deepcopy(opts.settings or {})
  if resolved.cmd == nil then
    if type(resolved.python) ~= 'string' or resolved.python == '' then
      fail('opts.python must be a non-empty string')
    end
    resolved.cmd = { vim.fn.expand(resolved.python), '-m', resolved.module }
  end
  if not is_list_of_strings(resolved.cmd) then
    fail('opts.cmd must be a non-empty list of strings, e.g. { "python3", "-m", "lsp_server" }')
  end
  if not is_list_of_strings(resolved.filetypes) then
    fail('opts.filetypes must be a non-empty list of strings')
  end
  if not is_list_of_strings(resolved.root_markers) then
    fail('opts.root_markers must be a non-empty list of file names')
  end
  for _, key in ipairs({ 'on_attach', 'on_adapters_changed' }) do
    if resolved[key] ~= nil and type(resolved[key]) ~= 'function' then
      fail('opts.' .. key .. ' must be a function')
    end
  end
  for _, key in ipairs({ 'notify', 'progress', 'commands' }) do
    if type(resolved[key]) ~= 'boolean' then
      fail('opts.' .. key .. ' must be true or false')
    end
  end
  check_settings(resolved.settings)
  return resolved
end

-- An empty Lua table encodes as a JSON array; the server needs objects.
local function as_object(tbl)
  if next(tbl) == nil then
    return vim.empty_dict()
  end
  return tbl
end

---------------------------------------------------------------------------------------------------
-- Clients
---------------------------------------------------------------------------------------------------

-- 0.11 prefers method calls (client:request); 0.7-0.10 only have fields (client.request).
local function client_request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

local function client_notify(client, method, params)
  if has_011 then
    return client:notify(method, params)
  end
  return client.notify(method, params)
end

local function client_stop(client, force)
  if has_011 then
    return client:stop(force)
  end
  return client.stop(force)
end

local function all_clients()
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ name = NAME })
  end
  local found = {}
  for _, client in ipairs(vim.lsp.get_active_clients()) do
    if client.name == NAME then
      table.insert(found, client)
    end
  end
  return found
end

--- The sleepy-coder client attached to `bufnr` (default: current buffer), or nil.
function M.client(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  for _, client in ipairs(all_clients()) do
    if vim.lsp.buf_is_attached(bufnr, client.id) then
      return client
    end
  end
  return nil
end

--- The id of the sleepy-coder client attached to `bufnr`, else of any running one, else nil.
function M.client_id(bufnr)
  local client = M.client(bufnr) or all_clients()[1]
  return client and client.id or nil
end

--- Directory of the nearest root marker above the buffer's file, or nil (then no client starts).
function M.find_root(bufnr, markers)
  markers = markers or (state.opts and state.opts.root_markers) or M.defaults.root_markers
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == '' then
    return nil
  end
  local dir = vim.fn.fnamemodify(name, ':p:h')
  while dir and dir ~= '' do
    for _, marker in ipairs(markers) do
      if uv.fs_stat(dir .. '/' .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then
      return nil
    end
    dir = parent
  end
  return nil
end

local function on_adapters_changed(_, params)
  params = params or {}
  local opts = state.opts or M.defaults
  if opts.notify then
    local message = params.message
    if type(message) ~= 'string' or message == '' then
      local routes = type(params.routes) == 'table' and table.concat(params.routes, ', ') or ''
      message = 'new adapters for ' .. (routes ~= '' and routes or 'no routes')
    end
    notify(message)
  end
  if opts.on_adapters_changed then
    opts.on_adapters_changed(params)
  end
  return vim.NIL
end

---------------------------------------------------------------------------------------------------
-- Progress: a model fix takes seconds to minutes, so its steps are shown as they happen.
---------------------------------------------------------------------------------------------------

--- The message-area line for one `$/progress` notification, or nil when it is not ours.
--- `value` is the WorkDoneProgress begin/report/end object. Remembers each token's title from
--- its `begin` (reports carry only a message) and forgets it at `end`. Exported for tests.
function M.progress_line(token, value)
  if type(token) ~= 'string' or token:sub(1, #PROGRESS_PREFIX) ~= PROGRESS_PREFIX then
    return nil
  end
  if type(value) ~= 'table' then
    return nil
  end
  if value.kind == 'begin' then
    state.progress[token] = { title = value.title }
  end
  local title = (state.progress[token] or {}).title
  if type(title) ~= 'string' or title == '' then
    title = 'sleepy-coder'
  elseif title:sub(1, #'sleepy-coder') ~= 'sleepy-coder' then
    title = 'sleepy-coder: ' .. title
  end
  local message = value.message
  if type(message) ~= 'string' or message == '' then
    message = nil
  end
  if value.kind == 'end' then
    state.progress[token] = nil
    return title .. ': ' .. (message or 'done')
  end
  if type(value.percentage) == 'number' then
    message = (message and message .. ' ' or '') .. string.format('(%d%%)', value.percentage)
  end
  return message and (title .. ': ' .. message) or title
end

-- One line, cut to the space the message area has: a longer echo would stop the editor with a
-- "Press ENTER" prompt in the middle of the user's typing.
local function echo_line(line)
  local width = tonumber(vim.v.echospace) or (vim.o.columns - 12)
  if width > 10 and vim.fn.strdisplaywidth(line) > width then
    line = vim.fn.strcharpart(line, 0, width - 1) .. '…'
  end
  vim.api.nvim_echo({ { line } }, false, {})
end

--- `$/progress` handler: shows our tokens as one line in the message area (unless
--- `progress = false`), then hands every notification to the handler in
--- `vim.lsp.handlers['$/progress']` (looked up now, so a progress plugin that replaced it still
--- sees ours). Returns the line shown, or nil.
function M.on_progress(err, result, ctx, config)
  local line = nil
  local opts = state.opts or M.defaults
  if type(result) == 'table' then
    local ok, value = pcall(M.progress_line, result.token, result.value)
    line = ok and value or nil
    if line and opts.progress then
      pcall(echo_line, line)
    end
  end
  local default = vim.lsp.handlers['$/progress']
  if default and default ~= M.on_progress then
    default(err, result, ctx, config)
  end
  return line
end

---------------------------------------------------------------------------------------------------
-- Starting the server: say why it cannot run, instead of "Client 1 quit with exit code 1".
---------------------------------------------------------------------------------------------------

-- The last non-empty line of a command's output (a traceback ends with the exception).
local function last_line(output)
  local found = nil
  for line in tostring(output or ''):gmatch('[^\r\n]+') do
    if line:match('%S') then
      found = vim.trim(line)
    end
  end
  return found
end

--- Checks that `cmd`, when it has the default form `{ python, '-m', module }`, can run: the
--- interpreter exists and imports the module. Returns true, or false and the message to show.
--- Any other command line is trusted as given. The answer is cached per interpreter and module
--- (the check runs a Python, once); `M.restart()` forgets it, e.g. after installing the package.
function M.check_interpreter(cmd)
  if type(cmd) ~= 'table' or #cmd ~= 3 or cmd[2] ~= '-m' then
    return true
  end
  local python, module = cmd[1], cmd[3]
  local key = python .. '\0' .. module
  if state.interpreters[key] == nil then
    local message = false
    local how = "set python = '/path/to/sleepy-coder/.venv/bin/python' in setup() (the Python scripts/setup.sh made)"
    if vim.fn.executable(python) ~= 1 then
      message = string.format('cannot start the server: %s is not an executable (not found, or not on PATH): %s', python, how)
    else
      local ok, output = pcall(vim.fn.system, { python, '-c', 'import ' .. module })
      if not ok or vim.v.shell_error ~= 0 then
        local why = last_line(ok and output or tostring(output)) or ('exit code ' .. tostring(vim.v.shell_error))
        message = string.format(
          '%s cannot import %s (%s): install sleepy-coder into that Python (scripts/setup.sh) or %s',
          python, module, why, how)
      end
    end
    state.interpreters[key] = message
  end
  local message = state.interpreters[key]
  if message then
    return false, 'sleepy-coder: ' .. message
  end
  return true
end

-- Checks once per interpreter and says so once: every Rust buffer opened after a failed check
-- would otherwise repeat the same error.
local function can_start(cmd)
  local ok, message = M.check_interpreter(cmd)
  if not ok and not state.reported[message] then
    state.reported[message] = true
    vim.notify(message, vim.log.levels.ERROR)
  end
  return ok
end

-- A server that dies says so in one line that points at its error output (Neovim writes the
-- server's stderr to the LSP log), after Neovim's own "Client N quit with exit code N".
local function on_exit(code, signal, client_id)
  if code == 0 or code == nil then
    return
  end
  vim.schedule(function()
    local log_path = vim.lsp.get_log_path and vim.lsp.get_log_path() or 'the LSP log'
    notify(string.format('the server (client %s) exited with code %s; its error output is in :LspLog (%s)',
      tostring(client_id), tostring(code), log_path), vim.log.levels.ERROR)
  end)
end

--- Runs a server command (workspace/executeCommand); `callback(err, result)` gets the answer.
function M.execute(command, arguments, callback, bufnr)
  callback = callback or function() end
  local client = M.client(bufnr) or all_clients()[1]
  if not client then
    callback({ message = 'the sleepy-coder server is not running (open a Rust file in a Cargo crate)' }, nil)
    return false
  end
  local params = { command = command, arguments = arguments or {} }
  client_request(client, 'workspace/executeCommand', params, function(err, result)
    callback(err, result)
  end, bufnr or vim.api.nvim_get_current_buf())
  return true
end

-- Client-side handler for the command attached to every fix: forward the offer id to the
-- server (which starts watching the applied edit) and remember the answer for scripts. It is no
-- reject default: :SleepyCoderReject only rejects an offer the user can see or pick.
local function accept_command(command, ctx)
  local args = command.arguments or {}
  state.last_offer_id = args[1]
  M.execute(command.command, args, function(err, result)
    if err then
      notify('accepting the fix failed: ' .. tostring(err.message or err), vim.log.levels.ERROR)
    elseif type(result) == 'table' then
      state.last_accepted = result
    end
  end, ctx and ctx.bufnr)
end

--- The client configuration shared by both registration paths (no root_dir).
function M.client_config(opts)
  opts = opts or state.opts or M.resolve_options({})
  return {
    name = NAME,
    cmd = vim.deepcopy(opts.cmd),
    filetypes = vim.deepcopy(opts.filetypes),
    init_options = as_object(vim.deepcopy(opts.settings)),
    settings = { [SECTION] = as_object(vim.deepcopy(opts.settings)) },
    capabilities = opts.capabilities,
    -- Only these two: every other method (window/showMessage included) keeps Neovim's handler.
    handlers = {
      [ADAPTERS_CHANGED] = on_adapters_changed,
      ['$/progress'] = function(err, result, ctx, config)
        return M.on_progress(err, result, ctx, config)
      end,
    },
    commands = { [SERVER_COMMANDS.accept] = accept_command },
    on_attach = opts.on_attach,
    on_exit = on_exit,
  }
end

---------------------------------------------------------------------------------------------------
-- Registration
---------------------------------------------------------------------------------------------------

local function register_011(opts)
  local config = M.client_config(opts)
  -- A function root_dir starts the client only inside a crate (no single-file mode), and only
  -- with an interpreter that can run the server (else one clear error instead of a crash).
  config.root_dir = function(bufnr, on_dir)
    local root = M.find_root(bufnr, opts.root_markers)
    if root and can_start(opts.cmd) then
      on_dir(root)
    end
  end
  vim.lsp.config(NAME, config)
  vim.lsp.enable(NAME)
end

-- 0.7-0.10: one client per root, started on demand and attached to each buffer of the crate.
local function attach_legacy(bufnr, opts)
  local root = M.find_root(bufnr, opts.root_markers)
  if not root then
    return nil
  end
  for _, client in ipairs(all_clients()) do
    if client.config.root_dir == root and not client.is_stopped() then
      vim.lsp.buf_attach_client(bufnr, client.id)
      return client.id
    end
  end
  if not can_start(opts.cmd) then
    return nil
  end
  local config = M.client_config(opts)
  config.root_dir = root
  config.workspace_folders = { { uri = vim.uri_from_fname(root), name = root } }
  local id = vim.lsp.start_client(config)
  if id then
    vim.lsp.buf_attach_client(bufnr, id)
  else
    notify('could not start ' .. table.concat(opts.cmd, ' '), vim.log.levels.ERROR)
  end
  return id
end

local function register_legacy(opts)
  state.group = vim.api.nvim_create_augroup('sleepy_coder', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = state.group,
    pattern = opts.filetypes,
    callback = function(args)
      attach_legacy(args.buf, opts)
    end,
  })
  -- Buffers opened before setup (lazy loading on `ft = 'rust'`) get attached too.
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(opts.filetypes, vim.bo[bufnr].filetype) then
      attach_legacy(bufnr, opts)
    end
  end
end

--- Attaches sleepy-coder to `bufnr` (default: current) whatever its filetype, if it is in a crate.
--- Returns the client id, or nil outside a crate. Useful for tests and custom autocmds.
function M.attach(bufnr)
  if bufnr == nil or bufnr == 0 then
    bufnr = vim.api.nvim_get_current_buf()
  end
  local opts = state.opts or M.resolve_options({})
  if has_011 then
    local root = M.find_root(bufnr, opts.root_markers)
    if not root or not can_start(opts.cmd) then
      return nil
    end
    local config = M.client_config(opts)
    config.root_dir = root
    return vim.lsp.start(config, { bufnr = bufnr })
  end
  return attach_legacy(bufnr, opts)
end

-- Buffers a restart attaches again: those the old clients served, and every loaded buffer of
-- the configured filetypes (one opened while the server could not start has no client yet).
local function restart_buffers(clients, filetypes)
  local buffers, seen = {}, {}
  local function add(bufnr)
    if not seen[bufnr] and vim.api.nvim_buf_is_loaded(bufnr) then
      seen[bufnr] = true
      table.insert(buffers, bufnr)
    end
  end
  for _, client in ipairs(clients) do
    for bufnr in pairs(client.attached_buffers or {}) do
      add(bufnr)
    end
  end
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.tbl_contains(filetypes, vim.bo[bufnr].filetype) then
      add(bufnr)
    end
  end
  table.sort(buffers)
  return buffers
end

--- Stops the sleepy-coder clients and starts them again for the loaded buffers in crates, e.g.
--- after installing the package into the interpreter, a server crash, or a new model setting.
--- Forgets the interpreter checks, so a fixed Python is checked again. Says what it did and
--- returns the number of buffers attached again.
function M.restart()
  local opts = state.opts or M.resolve_options({})
  local clients = all_clients()
  local buffers = restart_buffers(clients, opts.filetypes)
  state.interpreters, state.reported, state.progress = {}, {}, {}
  for _, client in ipairs(clients) do
    client_stop(client)
  end
  -- A stopping client is still reused by a start for the same root until its process exits.
  local function all_exited()
    for _, client in ipairs(clients) do
      if vim.lsp.get_client_by_id(client.id) then
        return false
      end
    end
    return true
  end
  if #clients > 0 and not vim.wait(5000, all_exited, 50) then
    for _, client in ipairs(clients) do
      client_stop(client, true)
    end
    vim.wait(2000, all_exited, 50)
  end
  local attached, started, ids = 0, 0, {}
  for _, bufnr in ipairs(buffers) do
    local id = M.attach(bufnr)
    if id then
      attached = attached + 1
      if not ids[id] then
        ids[id], started = true, started + 1
      end
    end
  end
  local function count(n, what)
    return string.format('%d %s%s', n, what, n == 1 and '' or 's')
  end
  local stopped = #clients == 0 and 'no server was running' or (count(#clients, 'server') .. ' stopped')
  if attached > 0 then
    notify(string.format('restarted: %s, %d started for %s', stopped, started, count(attached, 'buffer')))
  elseif #buffers == 0 then
    notify(stopped .. '; no Rust buffer in a Cargo crate is open, so none was started', vim.log.levels.WARN)
  else
    notify(stopped .. '; the server did not start again (see the message above)', vim.log.levels.WARN)
  end
  return attached
end

---------------------------------------------------------------------------------------------------
-- Commands
---------------------------------------------------------------------------------------------------

local function line_diagnostics(bufnr, row)
  local diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr, { lnum = row })) do
    local lsp = (d.user_data and d.user_data.lsp) or {}
    if lsp.range then
      table.insert(diagnostics, lsp) -- 0.10+ keeps the whole LSP diagnostic
    else
      table.insert(diagnostics, {
        range = {
          start = { line = d.lnum, character = d.col },
          ['end'] = { line = d.end_lnum or d.lnum, character = d.end_col or d.col },
        },
        severity = d.severity,
        message = d.message,
        source = d.source,
        code = d.code or lsp.code,
        data = lsp.data,
      })
    end
  end
  return diagnostics
end

-- The Command of a code action (a CodeAction's `command`, or the action itself when the server
-- answered with a bare Command), or nil.
local function action_command(action)
  if type(action) ~= 'table' then
    return nil
  end
  if type(action.command) == 'table' then
    return action.command
  end
  if type(action.command) == 'string' then
    return action
  end
  return nil
end

--- Whether a code action is a sleepy-coder "Reject this fix" offer (its command is
--- `sleepy-coder.reject`; the title is not trusted, other servers may say "Reject" too).
function M.is_reject_action(action)
  local command = action_command(action)
  return command ~= nil and command.command == SERVER_COMMANDS.reject
end

-- The fix's title, without the reject action's prefix.
local function reject_title(action)
  local title = type(action.title) == 'string' and action.title or 'the fix'
  if title:sub(1, #REJECT_PREFIX) == REJECT_PREFIX then
    title = title:sub(#REJECT_PREFIX + 1)
  end
  return title
end

local function run_reject(action, bufnr)
  local command = action_command(action)
  M.execute(command.command, command.arguments or {}, function(err, result)
    if err then
      notify('rejecting failed: ' .. tostring(err.message or err), vim.log.levels.ERROR)
      return
    end
    local title = type(result) == 'table' and type(result.title) == 'string' and result.title ~= '' and result.title
      or reject_title(action)
    notify('rejected: ' .. title)
  end, bufnr)
end

local NOTHING_TO_REJECT = 'no sleepy-coder fix at the cursor to reject'

--- Rejects a sleepy-coder fix offered at the cursor: the one reject offer there, or the one the
--- user picks (vim.ui.select) when there are several. With none it says so and sends nothing:
--- it never falls back to a fix applied earlier, which the user may have kept.
function M.reject()
  local bufnr = vim.api.nvim_get_current_buf()
  local client = M.client(bufnr)
  if not client then
    notify(NOTHING_TO_REJECT .. ' (sleepy-coder is not attached to this buffer)', vim.log.levels.WARN)
    return
  end
  local params = vim.lsp.util.make_range_params(0, client.offset_encoding)
  local row = vim.api.nvim_win_get_cursor(0)[1] - 1
  params.context = { diagnostics = line_diagnostics(bufnr, row), only = { 'quickfix' } }
  client_request(client, 'textDocument/codeAction', params, function(err, actions)
    if err then
      notify('asking for the fixes at the cursor failed: ' .. tostring(err.message or err), vim.log.levels.ERROR)
      return
    end
    local rejects = {}
    for _, action in ipairs(type(actions) == 'table' and actions or {}) do
      if M.is_reject_action(action) then
        table.insert(rejects, action)
      end
    end
    if #rejects == 0 then
      notify(NOTHING_TO_REJECT, vim.log.levels.WARN)
    elseif #rejects == 1 then
      run_reject(rejects[1], bufnr)
    else
      vim.ui.select(rejects, {
        prompt = 'Reject which sleepy-coder fix?',
        format_item = reject_title,
      }, function(choice)
        if choice then
          run_reject(choice, bufnr)
        end
      end)
    end
  end, bufnr)
end

-- Readable names for the store's counts (`sleepy-coder.status` sends table and outcome names).
-- Listed in display order; a key not listed here is shown with its underscores as spaces.
local COUNT_LABELS = {
  { 'diagnostics', 'error seen', 'errors seen' },
  { 'offers', 'fix offered', 'fixes offered' },
  { 'suggestions', 'fix offered', 'fixes offered' },
  { 'accepted', 'accepted', 'accepted' },
  { 'edited', 'edited after accepting', 'edited after accepting' },
  { 'reverted', 'reverted', 'reverted' },
  { 'rejected', 'rejected', 'rejected' },
  { 'ignored', 'ignored', 'ignored' },
  { 'training_sets', 'training set', 'training sets' },
  { 'learner_cycles', 'learning cycle', 'learning cycles' },
  { 'adapter_versions', 'adapter version', 'adapter versions' },
  { 'eval_runs', 'evaluation run', 'evaluation runs' },
  { 'eval_results', 'evaluation result', 'evaluation results' },
}
-- Totals that the per-kind counts already break down.
local COUNT_HIDDEN = { outcomes = true }
local MODEL_STATES = {
  ['not-loaded'] = 'not loaded yet',
  loading = 'loading',
  ready = 'loaded',
  failed = 'failed to load; rustc fixes still work',
  off = 'off (modelEnabled = false)',
}

local function count_phrase(store)
  local parts, seen = {}, {}
  local function add(key, one, many)
    local n = tonumber(store[key])
    seen[key] = true
    if n and n ~= 0 then
      table.insert(parts, string.format('%d %s', n, n == 1 and one or many))
    end
  end
  if store.offers ~= nil then
    seen.suggestions = true -- the newer name wins; never count the same fixes twice
  end
  for _, label in ipairs(COUNT_LABELS) do
    if not seen[label[1]] and store[label[1]] ~= nil then
      add(label[1], label[2], label[3])
    end
  end
  local rest = {}
  for key in pairs(store) do
    if not seen[key] and not COUNT_HIDDEN[key] then
      table.insert(rest, key)
    end
  end
  table.sort(rest)
  for _, key in ipairs(rest) do
    local name = tostring(key):gsub('_', ' '):gsub('(%l)(%u)', '%1 %2'):lower()
    add(key, name, name)
  end
  return #parts > 0 and table.concat(parts, ', ') or 'nothing yet'
end

-- "2026-12-02T15:00:12.5+00:00" -> "2026-12-02 15:00"; anything else as it came.
local function when(value)
  local day, time = tostring(value):match('^(%d%d%d%d%-%d%d%-%d%d)[T ](%d%d:%d%d)')
  return day and (day .. ' ' .. time) or tostring(value)
end

--- Plain-text lines (no markdown) for a `sleepy-coder.status` answer: the server's `summary`
--- lines when it sends them (they are written to be shown as they are), else the other keys
--- with readable labels.
function M.format_status(status)
  if type(status) == 'string' then
    local ok, decoded = pcall(vim.json.decode, status)
    status = ok and decoded or status
  end
  if type(status) ~= 'table' then
    return { 'sleepy-coder status: no answer from the server (' .. vim.inspect(status) .. ')' }
  end
  if type(status.summary) == 'table' and #status.summary > 0 then
    local lines = {}
    for _, line in ipairs(status.summary) do
      -- A line with a newline in it would break nvim_buf_set_lines.
      for part in tostring(line):gmatch('[^\n]+') do
        table.insert(lines, part)
      end
    end
    return lines
  end
  local function text(value)
    if value == nil or value == vim.NIL or value == '' then
      return nil
    end
    return tostring(value)
  end
  local learner = type(status.learner) == 'table' and status.learner or {}
  local routes = type(status.routesWithAdapters) == 'table' and status.routesWithAdapters or {}
  local store = type(status.store) == 'table' and status.store or {}
  local model_state = text(status.modelState)
  local last = text(learner.lastCycle)
  return {
    'Model: ' .. (text(status.model) or 'unknown') .. ' (' .. (model_state and (MODEL_STATES[model_state] or model_state) or 'state unknown') .. ')',
    'Learner: ' .. (text(learner.state) or 'unknown') .. '; ' .. (last and ('last cycle ' .. when(last)) or 'no cycle yet'),
    'Adapters: ' .. (#routes > 0 and table.concat(vim.tbl_map(tostring, routes), ', ') or 'none yet'),
    'Recorded: ' .. count_phrase(store),
  }
end

--- Asks the server for its status; `callback(err, status)`, or a floating window of plain text
--- (filetype `text`) when omitted.
function M.status(callback)
  M.execute(SERVER_COMMANDS.status, {}, function(err, result)
    if callback then
      callback(err, result)
    elseif err then
      notify(tostring(err.message or err), vim.log.levels.ERROR)
    else
      local lines = M.format_status(result)
      local buf = vim.lsp.util.open_floating_preview(lines, 'text', { border = 'rounded', focus_id = 'sleepy_coder_status' })
      if buf and vim.api.nvim_buf_is_valid(buf) then
        vim.bo[buf].filetype = 'text'
      end
    end
  end)
end

local function report_message(err, result)
  if err then
    notify(tostring(err.message or err), vim.log.levels.ERROR)
  elseif type(result) == 'string' then
    notify(result)
  elseif result ~= nil and result ~= vim.NIL then
    notify(vim.inspect(result))
  end
end

--- Starts a learning cycle now and shows the server's one-sentence answer; the server says what
--- the cycle did (window/showMessage, shown by Neovim's handler) when it finishes.
function M.learn_now()
  M.execute(SERVER_COMMANDS.learn_now, {}, report_message)
end

--- Opens the newest report a learning cycle wrote, or says there is none yet.
function M.open_report()
  M.execute(SERVER_COMMANDS.open_report, {}, function(err, result)
    if err then
      report_message(err)
    elseif type(result) == 'table' and type(result.path) == 'string' and result.path ~= '' then
      vim.cmd('edit ' .. vim.fn.fnameescape(result.path))
    else
      notify('no report yet: one is written after the first learning cycle')
    end
  end)
end

function M.forget_data()
  local answer = vim.fn.confirm('Forget all sleepy-coder data (recorded outcomes and training data)?', '&Forget\n&Cancel', 2)
  if answer ~= 1 then
    return
  end
  M.execute(SERVER_COMMANDS.forget_data, {}, function(err, result)
    if err then
      report_message(err)
    else
      notify('forgot your data (' .. count_phrase(type(result) == 'table' and result or {}) .. ')')
    end
  end)
end

--- Sends new settings to the running servers (workspace/didChangeConfiguration).
function M.update_settings(settings)
  check_settings(settings)
  if state.opts then
    state.opts.settings = vim.deepcopy(settings)
  end
  for _, client in ipairs(all_clients()) do
    client.config.settings = { [SECTION] = as_object(vim.deepcopy(settings)) }
    client_notify(client, 'workspace/didChangeConfiguration', { settings = client.config.settings })
  end
end

local function create_commands()
  local create = vim.api.nvim_create_user_command
  create('SleepyCoderReject', function()
    M.reject()
  end, { desc = 'Reject a sleepy-coder fix offered at the cursor (picked from a list when several)' })
  create('SleepyCoderRestart', function()
    M.restart()
  end, { desc = 'Stop the sleepy-coder servers and start them again for the open Rust buffers' })
  create('SleepyCoderLearnNow', function()
    M.learn_now()
  end, { desc = 'Start a sleepy-coder learning cycle now' })
  create('SleepyCoderStatus', function()
    M.status()
  end, { desc = 'Show the sleepy-coder model, learner and recorded counts' })
  create('SleepyCoderOpenReport', function()
    M.open_report()
  end, { desc = 'Open the latest report of a sleepy-coder learning cycle' })
  create('SleepyCoderForgetData', function()
    M.forget_data()
  end, { desc = 'Delete your sleepy-coder records (asks first)' })
end

---------------------------------------------------------------------------------------------------
-- Entry point
---------------------------------------------------------------------------------------------------

--- Registers the sleepy-coder client for Rust buffers. Calling it again replaces the options.
function M.setup(opts)
  local resolved = M.resolve_options(opts)
  state.opts = resolved
  if has_011 then
    register_011(resolved)
  else
    register_legacy(resolved)
  end
  if resolved.commands then
    create_commands()
  end
end

--- For tests and scripts: the offer id of the last fix accepted in this session (nil before).
--- Only a record of what happened; :SleepyCoderReject never uses it.
function M.last_offer_id()
  return state.last_offer_id
end

--- The server's answer to the last accept ({offerId, fixId, title, outcome, recorded}), or nil.
function M.last_accepted()
  return state.last_accepted
end

--- Old name of `last_offer_id`, kept for scripts written before offers had their own ids.
M.last_fix_id = M.last_offer_id

return M
