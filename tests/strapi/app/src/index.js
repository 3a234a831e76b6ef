// Bootstrap for the tests: a full-access API token, written where the tests read it,
// and a webhook that sends booking changes to sessionclock's receiver.
const fs = require('fs');

const TOKEN_NAME = 'sessionclock-tests';

async function ensureToken(strapi) {
  const file = process.env.SESSIONCLOCK_TEST_TOKEN_FILE;
  if (!file) return;
  const tokens = strapi.service('admin::api-token');
  // A restart on the same database keeps the token the tests already hold.
  if ((await tokens.exists({ name: TOKEN_NAME })) && fs.existsSync(file)) return;
  if (await tokens.exists({ name: TOKEN_NAME })) {
    const old = await tokens.getByName(TOKEN_NAME);
    await tokens.revoke(old.id);
  }
  const created = await tokens.create({
    name: TOKEN_NAME,
    description: 'sessionclock test suite',
    type: 'full-access',
    lifespan: null,
  });
  fs.writeFileSync(file, created.accessKey, { mode: 0o600 });
}

async function ensureWebhook(strapi) {
  const url = process.env.SESSIONCLOCK_TEST_WEBHOOK_URL;
  if (!url) return;
  const store = strapi.get('webhookStore');
  const existing = (await store.findWebhooks()).find((hook) => hook.url === url);
  if (existing) return;
  const webhook = await store.createWebhook({
    name: 'sessionclock',
    url,
    headers: {
      'X-Sessionclock-Secret': process.env.SESSIONCLOCK_TEST_WEBHOOK_SECRET || '',
    },
    events: ['entry.create', 'entry.update', 'entry.delete'],
    isEnabled: true,
  });
  strapi.get('webhookRunner').add(webhook);
}

module.exports = {
  register() {},
  async bootstrap({ strapi }) {
    await ensureToken(strapi);
    await ensureWebhook(strapi);
  },
};
