"""Every GraphQL document the Linear connector sends. A test validates each against Linear's
published schema and prices it with Linear's complexity rules.

Lists are read oldest change first and restarted from the last ``updatedAt`` seen (see the
connector), so each list query takes the same ``$since`` filter and ascending sort.
Page sizes: Linear allows 250 nodes a connection and 10,000 complexity points a query
(0.1 a scalar, 1 an object, a connection's children times its ``first``).
"""

from __future__ import annotations

# Page sizes are the documents' `$first` defaults. A project's first 10 teams and 10
# initiatives are read; more than that is rare, and the rest would not change its parent
# unless added earlier.

VIEWER = """
query Viewer($teams: [String!]) {
  viewer { id }
  teams(first: 250, filter: {key: {in: $teams}}) { nodes { key } }
}
"""

LABELS = """
query Labels($first: Int = 250, $after: String) {
  issueLabels(first: $first, after: $after) {
    nodes { id name }
    pageInfo { hasNextPage endCursor }
  }
}
"""

INITIATIVES = """
query Initiatives(
  $teams: [String!], $since: DateTimeOrDuration, $first: Int = 100, $after: String
) {
  initiatives(
    first: $first
    after: $after
    filter: {teams: {some: {key: {in: $teams}}}, updatedAt: {gte: $since}}
    sort: [{updatedAt: {order: Ascending}}]
  ) {
    nodes {
      id name slugId url status createdAt updatedAt startedAt completedAt
      parentInitiative { id }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

PROJECTS = """
query Projects(
  $teams: [String!], $since: DateTimeOrDuration, $first: Int = 100, $after: String
) {
  projects(
    first: $first
    after: $after
    filter: {accessibleTeams: {some: {key: {in: $teams}}}, updatedAt: {gte: $since}}
    sort: [{updatedAt: {order: Ascending}}]
  ) {
    nodes {
      id name slugId url createdAt updatedAt startedAt completedAt canceledAt
      status { name type }
      teams(first: 10) { nodes { key } }
      initiativeToProjects(first: 10) { nodes { createdAt initiative { id } } }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

ISSUES = """
query Issues(
  $teams: [String!], $since: DateTimeOrDuration, $first: Int = 250, $after: String
) {
  issues(
    first: $first
    after: $after
    filter: {team: {key: {in: $teams}}, updatedAt: {gte: $since}}
    sort: [{updatedAt: {order: Ascending}}]
  ) {
    nodes {
      id identifier title url estimate labelIds
      createdAt updatedAt startedAt completedAt canceledAt
      state { name type }
      team { key }
      parent { id }
      project { id name }
    }
    pageInfo { hasNextPage endCursor }
  }
}
"""

ALL = {"Viewer": VIEWER, "Labels": LABELS, "Initiatives": INITIATIVES,
       "Projects": PROJECTS, "Issues": ISSUES}  # fmt: skip
