// One SQLite file per test run, in a temporary folder the fixture chooses.
module.exports = ({ env }) => ({
  connection: {
    client: 'sqlite',
    connection: { filename: env('DATABASE_FILENAME') },
    useNullAsDefault: true,
  },
});
