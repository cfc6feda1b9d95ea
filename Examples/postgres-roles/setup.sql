-- The group roles the tokens' scopes name, and the owner that receives a retired role's objects.
CREATE ROLE analytics_read NOLOGIN;
CREATE ROLE exports_write NOLOGIN;
CREATE ROLE app_owner NOLOGIN;
-- The admin tokenctl logs in as: it may create roles and grant the two groups, nothing more.
CREATE ROLE tokenctl_admin_example LOGIN CREATEROLE PASSWORD 'change-me';
GRANT analytics_read, exports_write TO tokenctl_admin_example WITH ADMIN OPTION;
GRANT app_owner TO tokenctl_admin_example;
