// The import rules `npm test` checks (dependency-cruiser): the layers of src/ run one way,
// core (and src/sim, the cluster model) → runtime → training → apps → cli, and no folder imports
// another that imports it back. Each rule's comment is the reason it exists.
const layer = (name, below) => ({
  name: `${name}-imports-only-below`,
  severity: 'error',
  comment: `${name} may import only the layers below it (${below.join(', ') || 'none'}): an import that runs up means the idea belongs lower`,
  from: { path: `^src/${name}/` },
  to: { path: '^src/', pathNot: [`^src/${name}/`, ...below.map((b) => `^src/${b}/`)] },
});

module.exports = {
  forbidden: [
    layer('core', []),
    layer('sim', ['core']),
    layer('runtime', ['core']),
    layer('training', ['core', 'runtime']),
    layer('apps', ['core', 'sim', 'runtime', 'training']),
    {
      name: 'no-folder-cycles',
      severity: 'error',
      comment: 'two folders that import each other are one idea split in two, or two ideas tangled: move the shared piece down',
      scope: 'folder',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'no-module-cycles',
      severity: 'error',
      comment: 'a module that imports itself through others cannot be read top-down',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.cjs', '.cts'] },
  },
};
