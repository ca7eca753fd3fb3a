// pm2 process file: `npx pm2 start ecosystem.config.js`; `npx pm2 reload dcmx` replaces the
// running appliance without refusing a connection (README, "Reloading under pm2").
//
// Cluster mode with ONE instance, because only there does pm2's reload start the new process
// first, wait for its process.send('ready') (wait_ready), and only then stop the old one
// (SIGINT); in fork mode a reload is a restart, which leaves the ports closed meanwhile.
// pm2's cluster balancing is not used: every listener binds with SO_REUSEPORT in the
// appliance's own process (and its serving threads), and the appliance lets one process at a
// time deliver and sweep (server/succession.ts), so the old and the new share the ports and the
// store for the moment they overlap. More instances would only be more successors waiting.
//
// In cluster mode pm2 runs the app on the Node.js its own daemon runs on (`interpreter` is
// ignored): start pm2 through npx or npm scripts, which put the Node 24 of node_modules/.bin
// (native/runtime.js) first on PATH; an older Node stops the appliance with a message.
module.exports = {
  apps: [
    {
      name: 'dcmx',
      script: 'dist/server/main.js',
      cwd: __dirname,
      exec_mode: 'cluster',
      instances: 1,
      // V8's young generation capped at 2 x 8 MiB, as `npm start` does (README, "Memory"): left to V8 it grows
      // to 2 x 64 MiB under load, ~100 MB of RSS more, for no measurable gain in CPU per query.
      node_args: ['--max-semi-space-size=8'],
      // Start and reload: the new process is ready once every listener is up.
      wait_ready: true,
      listen_timeout: 20000,
      // The old one finishes its sessions (SMTP, LDAP: 5 s each at most) and exits within 10 s.
      kill_timeout: 12000,
      autorestart: true,
      max_restarts: 10,
      // The DCMX_* variables of the environment pm2 is started from apply (see README);
      // unset, the data lives in ./data next to this file.
      env: {
        NODE_ENV: 'production',
      },
    },
  ],
};
