declare module 'taskcluster-lib-scopes' {
  type Expr = string | { AllOf: Expr[] } | { AnyOf: Expr[] };
  const scopes: {
    satisfiesExpression(scopeset: string[], expression: Expr): boolean;
    removeGivenScopes(scopeset: string[], expression: Expr): Expr | null;
    scopeIntersection(a: string[], b: string[]): string[];
    scopeUnion(a: string[], b: string[]): string[];
    validScope(scope: string): boolean;
    validExpression(expr: unknown): boolean;
    scopeCompare(a: string, b: string): number;
    normalizeScopeSet(scopes: string[]): string[];
    patternMatch(pattern: string, scope: string): boolean;
    mergeScopeSets(a: string[], b: string[]): string[];
  };
  export default scopes;
}
